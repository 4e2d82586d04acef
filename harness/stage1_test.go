package harness

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// articlePieces is what stage 1 prints for the article's two messages sent with no delimiter,
// "Hello, world" and "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", until the
// client leaves: 10 bytes at a time, cut and run together.
var articlePieces = []string{
	"Server: received from client: Hello, wor",
	"Server: received from client: ldLorem ip",
	"Server: received from client: sum dolor ",
	"Server: received from client: sit amet, ",
	"Server: received from client: consectetu",
	"Server: received from client: r adipisci",
}

// Stage 1 reads its one client in pieces of exactly 10 bytes, whatever the messages were: the
// check "pieces" that the check command runs too. Ours promises more than the check asks: the
// last 8 bytes wait for 2 more, as Nim's recv(10) does, until the client leaves.
func TestStage1TenBytePieces(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 1, "pieces", "stage1-blocking")
	require.Equal(t, append([]string{"Server: client connected"}, articlePieces...), output(res)[:len(articlePieces)+1])
	require.Equal(t, "after close", res.Notes["last piece"])
	require.Contains(t, res.Output, "Server: received from client: ng elit.")
}

func TestStage1ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage1-blocking")
}

// checkListenErrors checks that the server in pkg explains, in one line on stderr, why it
// cannot listen (a port already taken, with a hint; an address that is not host:port), and
// exits with 1.
func checkListenErrors(t *testing.T, pkg string) {
	t.Helper()
	first := StartServer(t, pkg)
	busy := Start(t, Binary(t, pkg), nil, "-addr", first.Addr)
	require.Equal(t, 1, busy.WaitExit(t, Deadline))
	// The commonest cause is a server of an earlier stage still running: the line says so.
	require.Equal(t, pkg+": cannot listen on "+first.Addr+": address already in use"+
		fmt.Sprintf("\n(is another server still running? try -addr 127.0.0.1:%d)\n", first.Port+1), busy.Stderr())
	require.Empty(t, busy.Lines())

	malformed := Start(t, Binary(t, pkg), nil, "-addr", "127.0.0.1")
	require.Equal(t, 1, malformed.WaitExit(t, Deadline))
	require.Equal(t, pkg+": cannot listen on 127.0.0.1: missing port in address\n", malformed.Stderr())
	require.Empty(t, malformed.Lines())
}
