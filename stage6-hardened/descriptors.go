//go:build linux || darwin

package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Every client costs a file descriptor, and a process may open only so many (ulimit -n). Out
// of them, accept fails with EMFILE and leaves the connection in the listen queue, so the
// listener stays ready and a loop that only retried would spin. The answer here is the
// classic spare descriptor: keep one open for nothing, and when accept fails, close it,
// accept the waiting client with it, tell that client the server is full, close it, and open
// the spare again. New clients hear "try again later" at once instead of hanging in the queue.

// descriptors is what the server keeps for running out of them.
type descriptors struct {
	spare      int  // a descriptor kept free for turning clients away, or -1
	turnedAway int  // clients turned away since the server last had room
	paused     bool // no spare either: the listener is not watched until a client leaves
}

// prepare opens what the loop needs besides the listener: the runtime's own poller, a spare
// descriptor, and the pipe that signals arrive on; and starts watching the listener and pipe.
func (s *server) prepare() error {
	// Go's runtime opens descriptors of its own (an epoll or kqueue, and an eventfd or pipe) the
	// first time a timer needs them, which may be long after start-up. Out of descriptors by
	// then, it could not, and the whole server would crash: make it open them now.
	time.AfterFunc(time.Hour, func() {}).Stop()
	s.descriptors.spare = openSpare()
	signals, err := pipeOnSignal() // shutdown.go
	if err != nil {
		return err
	}
	s.shutdown.signals = signals
	return errors.Join(s.poller.add(s.listener), s.poller.add(s.shutdown.signals))
}

func openSpare() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// outOfDescriptors handles accept's EMFILE (this process is out of descriptors) or ENFILE (the
// whole system is), and reports whether to try accepting again.
func (s *server) outOfDescriptors(err error) (again bool) {
	if err != unix.EMFILE && err != unix.ENFILE {
		return false // EAGAIN: nobody else is waiting
	}
	if s.descriptors.spare < 0 {
		// No spare to use: stop watching the listener until a client leaves, or the loop spins.
		if !s.descriptors.paused {
			fmt.Fprintf(s.out, "Server: cannot accept connections: %v; waiting for a client to leave\n", err)
		}
		s.poller.remove(s.listener)
		s.descriptors.paused = true
		return false
	}
	// Linux fails accept for want of a descriptor even when nobody is waiting, so the queue
	// may well be empty: only an accept with the spare's descriptor tells.
	unix.Close(s.descriptors.spare)
	fd, _, acceptErr := unix.Accept(s.listener)
	if acceptErr == nil {
		if s.descriptors.turnedAway == 0 {
			fmt.Fprintf(s.out, "Server: cannot accept connections: %v; turning new clients away until one leaves\n", err)
		}
		turnAway(fd)
		s.descriptors.turnedAway++
	}
	s.descriptors.spare = openSpare()
	return acceptErr == nil
}

// turnAway tells a connection the server cannot take it, and closes it.
func turnAway(fd int) {
	unix.SetNonblock(fd, true)
	unix.Write(fd, []byte("Server: too many connections, try again later\r\n"))
	discardInput(fd, make([]byte, 512)) // limits.go: so that the close does not reset it
	unix.Close(fd)
}

// roomAgain, before each wait while the server is out of descriptors, opens one to learn
// whether a client has left: then it says how many it turned away, and listens again.
func (s *server) roomAgain() {
	if s.descriptors.turnedAway == 0 && !s.descriptors.paused {
		return
	}
	fd := openSpare()
	if fd < 0 {
		return // still out
	}
	unix.Close(fd)
	if s.descriptors.turnedAway > 0 {
		fmt.Fprintf(s.out, "Server: turned %d connections away while out of descriptors\n", s.descriptors.turnedAway)
		s.descriptors.turnedAway = 0
	}
	if s.descriptors.paused && !s.shutdown.begun {
		s.descriptors.paused = false
		s.poller.add(s.listener)
	}
}
