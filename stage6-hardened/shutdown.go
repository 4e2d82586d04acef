//go:build linux || darwin

package main

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// A shutdown (Ctrl-C, or SIGTERM from a service manager) should deliver what the server has
// promised: it stops accepting and reading, gives the output already queued up to a second
// to go out, and only then closes every connection. Only a client that cannot take its
// backlog within that second is cut off, as it would be on any drop.

// shutdown is what the server keeps for signals and for shutting down.
type shutdown struct {
	signals  int       // the read end of the pipe that signals arrive on
	begun    bool      // Ctrl-C or SIGTERM has come: see beginShutdown
	deadline time.Time // when the last clients are closed, ready or not
}

// pipeOnSignal returns a descriptor that becomes readable on SIGINT (Ctrl-C), SIGTERM, or
// SIGUSR1. Go delivers signals on a channel, but the loop sleeps in the poller, so a goroutine
// writes a byte into a pipe the poller watches: the classic self-pipe trick.
func pipeOnSignal() (int, error) {
	pipe := make([]int, 2)
	if err := unix.Pipe(pipe); err != nil {
		return -1, err
	}
	unix.SetNonblock(pipe[0], true)
	unix.CloseOnExec(pipe[0])
	unix.CloseOnExec(pipe[1])
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, unix.SIGINT, unix.SIGTERM, unix.SIGUSR1)
	go func() {
		for sig := range signals {
			b := byte('s') // stop
			if sig == unix.SIGUSR1 {
				b = 'q' // queues
			}
			unix.Write(pipe[1], []byte{b})
		}
	}()
	return pipe[0], nil
}

// onSignal reads the signals that have arrived, if any: the pipe is non-blocking.
func (s *server) onSignal() {
	n, _ := unix.Read(s.shutdown.signals, s.buffer[:16])
	for _, b := range s.buffer[:max(n, 0)] {
		switch {
		case b == 'q':
			s.printQueues()
		case s.shutdown.begun:
			s.shutdown.deadline = time.Now() // asked twice: stop now
		default:
			s.beginShutdown()
		}
	}
}

func (s *server) beginShutdown() {
	fmt.Fprintln(s.out, "Server: shutting down")
	s.shutdown.begun = true
	s.shutdown.deadline = time.Now().Add(time.Second)
	s.poller.remove(s.listener)
	unix.Close(s.listener)
	s.listener = -1
	// No more messages: nobody is read any more (flood.go's updateReads). finishShutdown reads
	// what a client sent just before it closes it, for an orderly close.
	for _, c := range s.clients {
		s.updateReads(c)
	}
}

// timeout is how long the poller may sleep: for ever, but for a shutdown's last second and
// for a client that waits for its budget (flood.go).
func (s *server) timeout() int {
	timeout := s.budgetTimeout()
	if !s.shutdown.begun {
		return timeout
	}
	untilDeadline := int(max(time.Until(s.shutdown.deadline).Milliseconds()+1, 0))
	if timeout < 0 {
		return untilDeadline
	}
	return min(timeout, untilDeadline)
}

// finishShutdown closes, during a shutdown, every client whose output has all gone out, and
// ends the program once none is left or the second is over.
func (s *server) finishShutdown() {
	if !s.shutdown.begun {
		return
	}
	over := !time.Now().Before(s.shutdown.deadline)
	cut := 0
	for fd, c := range s.clients {
		if c.output.queued > 0 && !over {
			continue
		}
		if c.output.queued > 0 {
			cut++
		}
		s.poller.remove(fd)
		discardInput(fd, s.buffer) // limits.go: so that the close is orderly, not a reset
		unix.Close(fd)
		delete(s.clients, fd)
		c.disconnected = true // so that nothing more is queued for it, nor written to fd
	}
	if len(s.clients) > 0 {
		return
	}
	if cut > 0 {
		fmt.Fprintf(s.out, "Server: cut off %d clients that did not take their output within a second\n", cut)
	}
	s.handLog()
	s.log.drain(time.Second)
	os.Exit(0)
}

// printQueues prints, on SIGUSR1, what waits for each client: a look inside a running server
// (kill -USR1 <pid>), and how the tests see that a queue is given back once it is empty.
func (s *server) printQueues() {
	fds := make([]int, 0, len(s.clients))
	for fd := range s.clients {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	fmt.Fprintf(s.out, "Server: %d clients\n", len(fds))
	for _, fd := range fds {
		c := s.clients[fd]
		fmt.Fprintf(s.out, "Server: client on descriptor %d: %d bytes waiting in %d batches, room for %d\n",
			fd, c.output.queued, len(c.output.batches), cap(c.output.batches))
	}
}
