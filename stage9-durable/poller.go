//go:build linux || darwin

package main

// event says that a descriptor is ready. readable also covers a hang-up or an error: the read
// that follows tells which.
type event struct {
	fd                 int
	readable, writable bool
}

// poller is all that differs between select, epoll and kqueue, so the loop reads the same
// whichever runs. Readiness is level-triggered: a descriptor is reported at every wait while it
// stays ready, so work left for the next pass is not lost.
type poller interface {
	add(fd int) error               // report fd when it is readable
	watchWrites(fd int, watch bool) // also report fd when it is writable, or stop that
	watchReads(fd int, watch bool)  // stop reporting fd as readable (a hang-up too), or start again
	remove(fd int)                  // stop reporting fd; call it before closing fd
	// wait sleeps until something is ready. timeout is in milliseconds, and -1 means none:
	// only a server that is shutting down, or has a client waiting for its budget, sets one.
	wait(timeout int) ([]event, error)
}

// newPoller returns the poller -poller names (parseFlags has checked it): select on any Unix,
// or this system's own (poller_epoll_linux.go, poller_kqueue_darwin.go).
func newPoller(name string) (poller, error) {
	if name == "select" {
		return &selectPoller{}, nil
	}
	return newNativePoller()
}
