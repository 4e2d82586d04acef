package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Stage 2 reads whole lines, ended by "\n" or "\r\n": the check "lines".
func TestStage2WholeLines(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 2, "lines", "stage2-recvline")
	want := append([]string{"Server: client connected"}, received(
		"Hello, world", "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "one", "two")...)
	require.Equal(t, want, output(res)[:len(want)])
}

// An empty line is a message too; an unfinished line waits for its end, and is printed as it
// is when the client leaves (stage 2's own promises, beyond the check).
func TestStage2EmptyAndUnfinishedLines(t *testing.T) {
	t.Parallel()
	s := StartServer(t, "stage2-recvline")
	client := Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))
	client.Send("\r\n\nafter two empty lines\r\nno newline at the end")
	s.ExpectLines(t, received("", "", "after two empty lines")...)
	s.ExpectNoLine(t, 300*time.Millisecond)
	client.Close()
	require.Equal(t, "Server: received from client: no newline at the end", s.NextLine(t))
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	require.Equal(t, 0, s.WaitExit(t, Deadline))
}

// A second client connects, because the kernel queues it, but it is never read from: the
// server is stuck serving the first one. The check command reports this as an observation.
func TestStage2SecondClientIsNeverServed(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 2, "second-client", "stage2-recvline")
	require.Equal(t, "no", res.Notes["second client served"])
	require.Equal(t, []string{"Server: client connected", "Server: received from client: Foo"}, output(res)[:2])
	require.NotContains(t, res.Output, "Server: received from client: Hola, mundo")
}

// Restarting on the same port at once works thanks to SO_REUSEADDR (the check "restart"), and
// fails without it, which the check must say. The later stages keep stage 2's -reuseaddr (the
// check speaks stage 2's protocol, so stage 7, which wants a name first, is left out).
func TestStage2ReuseAddr(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"stage2-recvline", "stage3-nonblocking", "stage4-broadcast", stage5, stage6} {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			// On a fresh port, the server listens fine without the option.
			fresh := StartServer(t, pkg, "-reuseaddr=false")
			fresh.Kill()

			runCheck(t, 2, "restart", pkg)
			res := failsCheck(t, ourServer(t, pkg, "-reuseaddr=false"), 2, "restart",
				"only a socket with SO_REUSEADDR set before bind may take its port")
			require.Contains(t, res.Output, pkg+": cannot listen on 127.0.0.1:"+res.Notes["port"]+
				": address already in use")
			require.Contains(t, res.Output, "(a connection of the last run may still be in TIME_WAIT: see -reuseaddr)")
		})
	}
}

func TestStage2ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage2-recvline")
}
