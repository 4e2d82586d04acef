//go:build linux || darwin

package main

// A client that sends a line and closes at once (a script, `printf 'bye\n' | nc -N`, a laptop
// lid) has left before the server read its last words. The kernel still holds them, though,
// so leaving loses nothing as long as the server reads before it closes. The danger is a
// write: a write to a client that has gone fails (EPIPE, ECONNRESET), and a server that
// disconnected it on the spot would throw away what it sent.

// relayLastWords runs before each wait. It reads what each client whose write failed in the
// pass left, relays it at once, and only then disconnects the client. The reads are bounded:
// a client cannot keep the loop here.
func (s *server) relayLastWords() {
	for i := 0; i < len(s.leavers); i++ { // a flush below may add leavers: see them through
		c := s.leavers[i]
		// A failed write means a broken connection, which can bring nothing more: what the
		// client left is what our kernel holds for it, and it is read now, whatever its budget
		// (flood.go); but not during a shutdown, which reads no more messages.
		c.budget.unlimited = true
		for read := 0; read < 64 && !c.disconnected && !s.shutdown.begun; read++ {
			s.receive(c) // until it reads the end of the stream, or the reset
		}
		if !c.disconnected {
			s.disconnect(c, errLeft)
		}
		s.flush()
	}
	s.leavers = s.leavers[:0]
}
