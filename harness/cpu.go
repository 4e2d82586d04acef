package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CPUUse measures how much of one core the process uses over window: 1.0 is a whole core.
//
// On Linux it reads /proc/<pid>/stat before and after the window and the process keeps
// running. Elsewhere (macOS) a running process's CPU time cannot be read without cgo, so the
// process is killed at the end of the window and its whole life's user+system time, from
// os.ProcessState, is divided by its whole life: start-up is counted too, which only makes
// the figure larger, so a low figure is still proof.
func CPUUse(t testing.TB, p *Process, window time.Duration) float64 {
	t.Helper()
	if CPUSupported {
		before, err := CPUTime(p.PID())
		require.NoError(t, err)
		start := time.Now()
		time.Sleep(window)
		after, err := CPUTime(p.PID())
		require.NoError(t, err)
		return float64(after-before) / float64(time.Since(start))
	}
	time.Sleep(window)
	p.Kill()
	state, ok := p.ExitState(Deadline)
	require.True(t, ok, "process did not stop")
	lifetime := time.Since(p.started)
	return float64(state.UserTime()+state.SystemTime()) / float64(lifetime)
}
