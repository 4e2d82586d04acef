package harness

import (
	"bufio"
	"sync/atomic"
	"testing"

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
