//go:build linux || darwin

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The limits guard the server's memory against one client: a line that never ends (a pasted
// megabyte, a binary file) or a client that never reads (a laptop closed mid-stream) would
// make a buffer grow without end. Past -max-line or -max-pending the client is dropped.

// drop is why the server drops a client: what the log says, and what the client is told.
type drop struct{ log, goodbye string }

func (d drop) Error() string { return d.log }

// errTooLong is why a client whose line is over the limit is dropped.
func errTooLong(maxLine int) error {
	why := fmt.Sprintf("line longer than %d bytes", maxLine)
	return drop{why, why}
}

// errNotReading is why a client whose output queue is over the limit is dropped.
func errNotReading(maxPending int) error {
	return drop{fmt.Sprintf("not reading: more than %d bytes pending", maxPending),
		fmt.Sprintf("more than %d bytes waiting for you", maxPending)}
}

// sayGoodbye tells a client the server drops why it does, in one last line, so that its user
// sees more than a closed connection. It is one try that never waits: a client that does not
// read has no room for it anyway. Nor is it sent after half a line, which it would garble.
func (s *server) sayGoodbye(c *client, why error) {
	if d, ok := why.(drop); ok && !c.output.cut {
		unix.Write(c.fd, []byte("Server: "+d.goodbye+", disconnecting you\n"))
	}
	// Closing a socket with unread input makes the kernel send a reset instead of an orderly
	// end, and a reset may destroy the goodbye before the client reads it.
	discardInput(c.fd, s.buffer)
}

// discardInput reads and throws away what a client has sent, up to 1 MiB.
func discardInput(fd int, buffer []byte) {
	for read := 0; read < 1<<20; {
		n, _ := unix.Read(fd, buffer)
		if n <= 0 {
			return // EAGAIN: nothing more for now; 0 or an error: the client has left
		}
		read += n
	}
}
