//go:build !linux

package harness

import (
	"errors"
	"time"
)

// CPUSupported reports whether CPUTime can read a running process's CPU time on this OS.
// Elsewhere than Linux, measure a process's CPU after it has stopped (see CPUUse).
const CPUSupported = false

var errNoProc = errors.New("reading a running process's CPU time, memory and descriptors needs Linux's /proc")

// CPUTime needs /proc; see CPUUse for the portable way.
func CPUTime(pid int) (time.Duration, error) { return 0, errNoProc }

// CPUTicks needs /proc.
func CPUTicks(pid int) (int64, error) { return 0, errNoProc }

// RSS needs /proc.
func RSS(pid int) (int64, error) { return 0, errNoProc }

// Memory is what Linux's /proc/<pid>/status says about a process's resident memory, in bytes.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the most it has ever been resident
}

// ReadMemory needs /proc.
func ReadMemory(pid int) (Memory, error) { return Memory{}, errNoProc }

// Descriptors counts a process's open file descriptors.
type Descriptors struct {
	All     int // every descriptor
	Sockets int // those that are sockets
}

// OpenDescriptors needs /proc.
func OpenDescriptors(pid int) (Descriptors, error) { return Descriptors{}, errNoProc }
