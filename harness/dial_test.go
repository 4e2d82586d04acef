package harness

import (
	"net"
	"testing"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// dialSmallReceiveBuffer connects with a small receive buffer, so that a client that does not
// read fills up quickly and the server has to hold the rest.
func dialSmallReceiveBuffer(t *testing.T, addr string) *tester.Client {
	t.Helper()
	conn, err := tester.SmallReceiveBuffer.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return tester.TestClient(t, conn)
}

// Dial connects a test's client to addr (see tester.TestClient); the connection is closed
// when the test ends.
func Dial(t testing.TB, addr string) *tester.Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, Deadline)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return tester.TestClient(t, conn)
}

// DialClients connects n clients to the server and waits for its n "Server: client connected"
// lines, so that every client is served when it returns.
func (s *Server) DialClients(t testing.TB, n int) []*tester.Client {
	t.Helper()
	// All the connections first, then all the lines that say they were accepted: one round
	// trip to the server per client would make a thousand clients take seconds.
	clients := make([]*tester.Client, n)
	for i := range clients {
		clients[i] = Dial(t, s.Addr)
	}
	for range clients {
		require.Equal(t, "Server: client connected", s.NextLine(t))
	}
	return clients
}
