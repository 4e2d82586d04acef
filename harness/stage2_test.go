package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Stage 2 reads whole lines, ended by "\n" or "\r\n"; an empty line is a message too.
func TestStage2WholeLines(t *testing.T) {
	s := StartServer(t, "stage2-recvline")
	client := Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))

	client.Send(t, "Hello, world\r\n")
	client.Send(t, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n")
	client.Send(t, "\r\n\nafter two empty lines\r\nno newline at the end")
	want := []string{
		"Server: received from client: Hello, world",
		"Server: received from client: Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
		"Server: received from client: ",
		"Server: received from client: ",
		"Server: received from client: after two empty lines",
	}
	s.ExpectLines(t, want...)

	// An unfinished line waits for its end; when the client leaves, it is printed as it is.
	s.ExpectNoLine(t, 300*time.Millisecond)
	client.Close()
	require.Equal(t, "Server: received from client: no newline at the end", s.NextLine(t))
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	require.Equal(t, 0, s.WaitExit(t, Deadline))
}

// A second client connects, because the kernel queues it, but it is never read from: the
// server is stuck serving the first one.
func TestStage2SecondClientIsNeverServed(t *testing.T) {
	s := StartServer(t, "stage2-recvline")
	first := Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))

	second := Dial(t, s.Addr)
	second.Send(t, "Hola, mundo\r\n")
	s.ExpectNoLine(t, 500*time.Millisecond)

	first.Send(t, "Foo\r\n")
	require.Equal(t, "Server: received from client: Foo", s.NextLine(t))

	first.Close()
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	require.Equal(t, 0, s.WaitExit(t, Deadline))
	require.NotContains(t, s.Lines(), "Server: received from client: Hola, mundo")
}

// Restarting on the same port at once works thanks to SO_REUSEADDR, and fails without it.
func TestStage2ReuseAddr(t *testing.T) {
	// On a fresh port, the server listens fine without the option.
	fresh := StartServer(t, "stage2-recvline", "-reuseaddr=false")
	fresh.Kill()

	// Stop the server while a client is connected: the server's end of the connection is
	// closed first, so it is the server's port that waits in TIME_WAIT once the client closes.
	s := StartServer(t, "stage2-recvline")
	client := Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))
	s.Kill()
	client.ExpectClosed(t)
	client.Close()

	// Without SO_REUSEADDR: the article's "Address already in use".
	without := Start(t, Binary(t, "stage2-recvline"), nil, "-addr", s.Addr, "-reuseaddr=false")
	require.Equal(t, 1, without.WaitExit(t, Deadline))
	require.Equal(t, "stage2-recvline: cannot listen on "+s.Addr+": address already in use\n", without.Stderr())

	// With it, the default: the port is ours again at once.
	again := StartServer(t, "stage2-recvline", "-addr", s.Addr)
	require.Equal(t, s.Port, again.Port)
	Dial(t, again.Addr)
	require.Equal(t, "Server: client connected", again.NextLine(t))
}

func TestStage2ListenErrors(t *testing.T) {
	checkListenErrors(t, "stage2-recvline")
}
