package harness

// The /proc reader is package tester's (harness/tester/proc_*.go); these are its names here.

import (
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// CPUSupported reports whether CPUTime can read a running process's CPU time on this OS.
const CPUSupported = tester.ProcReadable

type (
	Memory      = tester.Memory
	Descriptors = tester.Descriptors
)

// CPUTime is the user plus system CPU time the process pid has used so far.
func CPUTime(pid int) (time.Duration, error) { return tester.CPUTime(pid) }

// CPUTicks is CPUTime in the kernel's own unit, for claims such as "zero ticks while idle".
func CPUTicks(pid int) (int64, error) { return tester.CPUTicks(pid) }

// RSS is the resident memory of the process pid in bytes.
func RSS(pid int) (int64, error) { return tester.RSS(pid) }

// ReadMemory reads a process's resident memory now and at its peak.
func ReadMemory(pid int) (Memory, error) { return tester.ReadMemory(pid) }

// OpenDescriptors counts the process's open file descriptors.
func OpenDescriptors(pid int) (Descriptors, error) { return tester.OpenDescriptors(pid) }
