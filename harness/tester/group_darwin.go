package harness

import (
	"errors"
	"syscall"
	"time"
)

// GroupCPUMeasured reports whether this system lets the checks measure a server's CPU use:
// macOS has no /proc, and the checks do not measure CPU there.
const GroupCPUMeasured = false

// groupAlive reports whether any process of group pgid still exists.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

func groupCPU(pgid int) (time.Duration, error) {
	return 0, errors.New("CPU use is not measured on macOS (it needs Linux's /proc)")
}

// acceptQueue cannot be read on macOS without cgo.
func acceptQueue(port int) (waiting int, ok bool) { return 0, false }
