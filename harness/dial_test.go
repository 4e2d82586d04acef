package harness

import (
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
