package harness

import (
	"errors"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// MeasureCPU measures how much of one core the process uses over window: 1.0 is a whole core.
//
// On Linux it reads /proc/<pid>/stat before and after the window, and the process keeps
// running. Elsewhere (macOS) a running process's CPU time cannot be read without cgo, so the
// process is killed at the end of the window and its whole life's user+system time, from
// os.ProcessState, is divided by its whole life. Start-up is counted too, which only makes the
// figure larger, so a low figure is still proof.
func MeasureCPU(p *Process, window time.Duration) (float64, error) {
	if CPUSupported {
		return p.running.CPU(window)
	}
	time.Sleep(window)
	p.Kill()
	state, ok := p.ExitState(Deadline)
	if !ok {
		return 0, errors.New("the process did not stop")
	}
	return float64(state.UserTime()+state.SystemTime()) / float64(time.Since(p.started)), nil
}

// CPUSupported reports whether a running process's CPU time can be read on this OS (through
// Linux's /proc: see tester.CPUTime).
const CPUSupported = tester.ProcReadable
