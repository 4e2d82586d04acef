//go:build darwin

package main

import "golang.org/x/sys/unix"

// Elsewhere (macOS has no eventfd) the wake-up is a pipe, the classic self-pipe: a goroutine
// writes a byte into one end, and the other end, which the poller watches, becomes readable.
// Both ends are non-blocking: a full pipe is readable already, so a write that fails with
// EAGAIN has done its job, and draining stops when the pipe is empty.

// waker is a descriptor that the poller watches and that any goroutine can make readable.
type waker struct{ fd, write int }

func newWaker() (waker, error) {
	pipe := make([]int, 2)
	if err := unix.Pipe(pipe); err != nil {
		return waker{}, err
	}
	for _, fd := range pipe {
		unix.SetNonblock(fd, true)
		unix.CloseOnExec(fd)
	}
	return waker{pipe[0], pipe[1]}, nil
}

// wake makes the descriptor readable, from any goroutine.
func (w waker) wake() {
	unix.Write(w.write, []byte{1})
}

// drain makes it unreadable again; the loop calls it before taking what waits.
func (w waker) drain() {
	var bytes [512]byte
	for {
		if n, _ := unix.Read(w.fd, bytes[:]); n <= 0 {
			return
		}
	}
}
