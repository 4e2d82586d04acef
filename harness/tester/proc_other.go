//go:build !linux

package tester

import (
	"errors"
	"time"
)

// ProcReadable reports whether this system lets a running process's CPU time, memory and
// descriptors be read: they need Linux's /proc. Elsewhere, a process's CPU can be measured
// only once it has stopped (see harness.MeasureCPU).
const ProcReadable = false

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

// GroupCPUTime needs /proc.
func GroupCPUTime(pgid int) (time.Duration, error) { return 0, errNoProc }

// acceptQueue cannot be read without /proc.
func acceptQueue(port int) (waiting int, ok bool) { return 0, false }

// groupListens needs /proc: elsewhere only the server's output tells where it listens.
func groupListens(pgid int) []int { return nil }
