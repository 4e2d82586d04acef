//go:build !linux

package harness

import (
	"errors"
	"time"
)

// CPUSupported reports whether CPUTime can read a running process's CPU time on this OS.
// Elsewhere than Linux, measure a process's CPU after it has stopped (see CPUUse).
const CPUSupported = false

var errNoProc = errors.New("reading a running process's CPU time and memory needs Linux's /proc")

// CPUTime needs /proc; see CPUUse for the portable way.
func CPUTime(pid int) (time.Duration, error) { return 0, errNoProc }

// CPUTicks needs /proc.
func CPUTicks(pid int) (int64, error) { return 0, errNoProc }

// RSS needs /proc.
func RSS(pid int) (int64, error) { return 0, errNoProc }
