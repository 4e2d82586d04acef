package harness

import (
	"bufio"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The flood helpers of the checks (check_stages.go), for tests that talk to our own servers
// with plain clients.

// startFlood sends count numbered lines from c (see sendFlood).
func startFlood(c *Client, count int, received *atomic.Int64) <-chan error {
	return sendFlood(c.Conn, count, received)
}

// expectFlood reads count flood lines in order, failing at the first one missing.
func expectFlood(t *testing.T, c *Client, count int, received *atomic.Int64) {
	t.Helper()
	for i := 0; i < count; i++ {
		if line := c.ReadLine(t); line != FloodLine(i) {
			t.Fatalf("line %d: got %q, want %q", i, line, FloodLine(i))
		}
		received.Store(int64(i + 1))
	}
}

// dialSmallReceiveBuffer connects with a small receive buffer, so that a client that does not
// read fills up quickly and the server has to hold the rest.
func dialSmallReceiveBuffer(t *testing.T, addr string) *Client {
	t.Helper()
	conn, err := smallReceiveBuffer.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &Client{Conn: conn, reader: bufio.NewReader(conn)}
}

// relayRepeated sends line count times from sender, in a goroutine (the server may take its
// time), and expects each at receiver as the server relays it, ended by "\r\n".
func relayRepeated(t *testing.T, sender, receiver *Client, line string, count int) {
	t.Helper()
	go func() {
		for range count {
			sender.Conn.SetWriteDeadline(time.Now().Add(Deadline))
			if _, err := sender.Conn.Write([]byte(line + "\n")); err != nil {
				return
			}
		}
	}()
	for i := range count {
		if got := receiver.ReadLine(t); got != line+"\r\n" {
			t.Fatalf("line %d: got %d bytes %.40q..., want %d bytes %.40q...", i, len(got), got, len(line)+2, line)
		}
	}
}
