package tester

import "time"

// CPUShare is the CPU meter every CPU figure of this repository comes from: how much of one
// core (1.0 is a whole one) the counter used grows by over window. used reads the CPU time
// spent so far: CPUTime for one process, GroupCPUTime for a process group.
func CPUShare(window time.Duration, used func() (time.Duration, error)) (float64, error) {
	before, err := used()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(window)
	after, err := used()
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(time.Since(start)), nil
}
