//go:build linux || darwin

package main

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// One person must not be able to empty the room. `yes | nc` sends as fast as the network
// carries, every line it sends is queued for everyone else, and readers slower than the flood
// fall past -max-pending and are dropped. So each client has a budget for the bytes it sends,
// a token bucket, as IRC servers have had for decades: the bucket holds up to -max-burst
// bytes and refills at -max-rate bytes a second. A paste fits in the bucket and goes through
// at once; a flood empties it, and from then on the server reads that client no faster than
// the rate. Nothing is dropped or cut: the server just stops watching the client for reads
// until its bucket has refilled a little, so what it sends waits in the kernel, its own
// buffers fill, and its own send blocks. Nobody else pays for it.
//
// A client that closes while it waits for budget is noticed once what it sent before the
// close has been read, at its rate: the close comes last in its stream, and reading up to it
// at once would be the very flood the budget stops. A client whose connection broke (a write
// to it failed) can send nothing more, though: what it left is read at once (lastwords.go).

// budget is a client's token bucket, kept as what it has used: a new client's is full.
type budget struct {
	used       float64   // bytes taken from the bucket and not yet refilled
	refilled   time.Time // when used was last brought up to date
	throttled  bool      // out of budget: not watched for reads until it has some again
	slowedDown bool      // the log said so; the episode ends when the bucket is full again
	unlimited  bool      // its connection broke: what it left is read at once (lastwords.go)
}

// allowance brings c's bucket up to date and returns how many bytes a read from c may take.
func (s *server) allowance(c *client) int {
	if s.options.maxRate == 0 || c.budget.unlimited {
		return len(s.buffer)
	}
	now := time.Now()
	c.budget.used = max(c.budget.used-float64(s.options.maxRate)*now.Sub(c.budget.refilled).Seconds(), 0)
	c.budget.refilled = now
	if c.budget.used == 0 {
		c.budget.slowedDown = false // the bucket is full: a flood after this is a new one
	}
	return min(int(float64(s.options.maxBurst)-c.budget.used), len(s.buffer))
}

// spend takes n bytes read from c out of its bucket. A client left with less than is worth a
// read is not watched for reads any more, until readAgain finds that it has enough.
func (s *server) spend(c *client, n int) {
	if s.options.maxRate == 0 || c.budget.unlimited {
		return
	}
	c.budget.used += float64(n)
	if c.budget.throttled || float64(s.options.maxBurst)-c.budget.used >= s.worthReading() {
		return
	}
	c.budget.throttled = true
	s.waitingForBudget = append(s.waitingForBudget, c)
	s.updateReads(c)
	if !c.budget.slowedDown {
		c.budget.slowedDown = true // once per episode, not once per read
		fmt.Fprintf(s.out, "Server: client slowed down: sending faster than %d bytes/s\n", s.options.maxRate)
		// One try that never waits, and only between two lines, as sayGoodbye does (limits.go).
		if !c.output.cut {
			unix.Write(c.fd, []byte(fmt.Sprintf("Server: you send faster than %d bytes/s, slowing you down\r\n", s.options.maxRate)))
		}
	}
}

// worthReading is the budget a throttled client waits for: a tenth of a second at -max-rate,
// so that it wakes the loop at most ten times a second (but no more than the bucket or the
// read buffer holds, or it would wait for ever).
func (s *server) worthReading() float64 {
	return max(min(float64(s.options.maxRate)/10, float64(s.options.maxBurst), float64(len(s.buffer))), 1)
}

// readAgain watches again for reads the throttled clients whose budget has come back.
func (s *server) readAgain() {
	waiting := s.waitingForBudget[:0]
	for _, c := range s.waitingForBudget {
		switch {
		case s.clients[c.fd] != c:
			// Gone while it waited (dropped, left, or closed by a shutdown): its descriptor
			// is closed, or a new client's by now.
		case float64(s.allowance(c)) >= s.worthReading():
			c.budget.throttled = false
			s.updateReads(c)
		default:
			waiting = append(waiting, c)
		}
	}
	clear(s.waitingForBudget[len(waiting):])
	s.waitingForBudget = waiting
}

// budgetTimeout is how long the poller may sleep before a throttled client has budget again,
// in milliseconds, or -1 while nobody waits for it: a loop that polled for it would spin.
func (s *server) budgetTimeout() int {
	timeout := -1
	for _, c := range s.waitingForBudget {
		if s.clients[c.fd] != c {
			continue // gone: readAgain forgets it
		}
		missing := s.worthReading() - (float64(s.options.maxBurst) - c.budget.used)
		ready := c.budget.refilled.Add(time.Duration(missing / float64(s.options.maxRate) * float64(time.Second)))
		wait := int(max(time.Until(ready).Milliseconds()+1, 0)) // +1: not a millisecond early
		if timeout < 0 || wait < timeout {
			timeout = wait
		}
	}
	return timeout
}

// updateReads watches c for reads, or stops, as what holds it back says: its budget, or a
// shutdown. One place decides, so that neither can put back in the poller a client that the
// other holds.
func (s *server) updateReads(c *client) {
	s.poller.watchReads(c.fd, !c.budget.throttled && !s.shutdown.begun)
}
