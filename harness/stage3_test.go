package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Stage 3 serves many clients from one loop, and hears every complete line from each of them.
func TestStage3ManyClients(t *testing.T) {
	s := StartServer(t, "stage3-nonblocking")
	clients := s.DialClients(t, 3)

	// Each client talks in turn, and the test waits for its line before the next one talks,
	// so that the order of the output is known.
	for i, line := range []struct{ send, message string }{
		{"Hello\r\n", "Hello"},
		{"Hola\n", "Hola"},
		{"Foo\r\n", "Foo"},
	} {
		clients[i].Send(t, line.send)
		require.Equal(t, "Server: received from client: "+line.message, s.NextLine(t))
	}

	// Two lines in one write come out as two lines; half a line waits for the rest.
	clients[0].Send(t, "one\r\ntwo\r\nthr")
	require.Equal(t, "Server: received from client: one", s.NextLine(t))
	require.Equal(t, "Server: received from client: two", s.NextLine(t))
	s.ExpectNoLine(t, 300*time.Millisecond)
	clients[0].Send(t, "ee\r\n")
	require.Equal(t, "Server: received from client: three", s.NextLine(t))

	// A client leaves: one "disconnected" line, no empty "received" line before it, and the
	// others are still heard.
	clients[1].Close()
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	clients[0].Send(t, "Bar\r\n")
	require.Equal(t, "Server: received from client: Bar", s.NextLine(t))
	clients[2].Send(t, "Baz\r\n")
	require.Equal(t, "Server: received from client: Baz", s.NextLine(t))
}

// With nobody connecting and nobody talking, the polling loop still keeps a core busy.
func TestStage3BurnsCPUWhileIdle(t *testing.T) {
	checkBurnsCPU(t, "stage3-nonblocking")
}

func TestStage3ListenErrors(t *testing.T) {
	checkListenErrors(t, "stage3-nonblocking")
}

// checkBurnsCPU checks that the server in pkg, with one client connected and silent, uses
// at least half a core: it asks its sockets for news over and over instead of sleeping. Half,
// not all of it, because the machine that runs the tests may be busy with other work.
func checkBurnsCPU(t *testing.T, pkg string) {
	t.Helper()
	s := StartServer(t, pkg)
	Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))
	use := CPUUse(t, s.Process, time.Second)
	require.GreaterOrEqual(t, use, 0.5, "a polling server should spin while idle, but it used %.0f%% of a core", use*100)
}
