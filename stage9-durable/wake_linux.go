package main

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// On Linux the wake-up is an eventfd: a counter in the kernel behind one descriptor, made for
// exactly this. A write adds to the counter and makes the descriptor readable; a read returns
// the counter and sets it back to zero. Unlike a pipe it never fills up, and costs one
// descriptor, not two.

// waker is a descriptor that the poller watches and that any goroutine can make readable.
type waker struct{ fd int }

func newWaker() (waker, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	return waker{fd}, err
}

// wake makes the descriptor readable, from any goroutine.
func (w waker) wake() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.fd, one[:])
}

// drain makes it unreadable again; the loop calls it before taking what waits.
func (w waker) drain() {
	var count [8]byte
	unix.Read(w.fd, count[:]) // EAGAIN when nobody woke it: nothing to do
}
