//go:build linux || darwin

package harness

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// needDescriptors skips the test if this process may not open n descriptors (the server, a Go
// program too, raises its own limit the same way at start-up).
func needDescriptors(t *testing.T, n uint64) {
	var limit syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit))
	if limit.Cur < n {
		t.Skipf("this process may open %d descriptors; the test needs %d (try ulimit -n)", limit.Cur, n)
	}
}

// A client that never reads is dropped once too much waits for it (1 MiB here, to be quick);
// meanwhile a healthy client gets every line, in order, without waiting for it: the check
// "stalled".
func TestStage5SlowReader(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "stalled", stage5, "-poller", poller, "-quiet", "-max-pending", "1048576")
		require.Contains(t, res.Output, "Server: client disconnected (not reading: more than 1048576 bytes pending)")
	})
}

// A client that stops reading for a while gets everything once it reads again, and after
// that the server stops watching it for writability (or the loop would spin): the check
// "catch-up". It is not dropped: 4 MB is under the default limit of 4 MiB.
func TestStage5SlowReaderCatchesUp(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "catch-up", stage5, "-poller", poller, "-quiet")
		for _, line := range res.Output {
			require.NotContains(t, line, "not reading")
		}
	})
}

// select cannot watch descriptor 1024 or above: such a connection is closed at once with a
// line that says why, and everyone already connected is still served.
func TestStage5SelectLimit(t *testing.T) {
	needDescriptors(t, 1200)
	s := StartServer(t, stage5, "-poller", "select")
	var clients []*Client
	refused := 0
	for len(clients) < 1100 && refused < 3 {
		c := Dial(t, s.Addr)
		switch line := s.NextLine(t); line {
		case stage5Connected:
			clients = append(clients, c)
		case "Server: refused a connection: descriptor 1024 is past select's limit of 1024 (FD_SETSIZE); try -poller " + nativePoller():
			refused++
			c.ExpectClosed(t)
			c.Close()
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	require.Equal(t, 3, refused, "with %d clients connected", len(clients))
	require.Greater(t, len(clients), 1000)

	clients[0].Send(t, "still served\n")
	require.Equal(t, "Server: received from client: still served", s.NextLine(t))
	require.Equal(t, "still served\r\n", clients[1].ReadLine(t))
	require.Equal(t, "still served\r\n", clients[len(clients)-1].ReadLine(t))
	last := clients[len(clients)-1]
	last.Send(t, "me too\n")
	require.Equal(t, "me too\r\n", clients[0].ReadLine(t))
}

// epoll and kqueue have no such limit. The test stays at 2,000 clients to be kind to small
// machines; the server itself has been run with 10,000.
func TestStage5ManyClients(t *testing.T) {
	const count = 2000
	needDescriptors(t, count+100)
	s := StartServer(t, stage5, "-poller", nativePoller())
	var before int64
	if CPUSupported {
		var err error
		before, err = RSS(s.PID())
		require.NoError(t, err)
	}
	clients := s.DialClients(t, count)
	if CPUSupported {
		after, err := RSS(s.PID())
		require.NoError(t, err)
		perClient := (after - before) / count
		t.Logf("resident memory: %d KiB before, %d KiB with %d clients (%d bytes each)", before>>10, after>>10, count, perClient)
		require.Less(t, perClient, int64(2048), "an idle client should cost little memory")
	}

	clients[count-1].Send(t, "hello, everyone\n")
	for _, c := range clients[:count-1] {
		require.Equal(t, "hello, everyone\r\n", c.ReadLine(t))
	}
	clients[0].Send(t, "hello back\n")
	require.Equal(t, "hello back\r\n", clients[count-1].ReadLine(t))
}

// Out of descriptors, accept fails with EMFILE. The server says so once, turns each new
// client away with a line (the spare descriptor trick) instead of leaving it hanging in the
// queue, survives traffic heavy enough to start Go's garbage collector and timers, and takes
// new clients again once one leaves.
func TestStage5OutOfDescriptors(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		// sh's ulimit lowers both the soft and the hard limit, so Go cannot raise it again.
		p := Start(t, "sh", nil, "-c", `ulimit -n 24 && exec "$0" "$@"`, Binary(t, stage5),
			"-addr", "127.0.0.1:0", "-poller", poller, "-quiet", "-max-pending", "33554432")
		m := regexp.MustCompile(`port (\d+)\.\.\.$`).FindStringSubmatch(p.NextLine(t))
		require.NotNil(t, m, "stderr: %q", p.Stderr())
		require.Contains(t, p.NextLine(t), "waiting for sockets with")
		port, _ := strconv.Atoi(m[1])
		s := &Server{Process: p, Port: port, Addr: net.JoinHostPort("127.0.0.1", m[1])}

		var clients []*Client
		for len(clients) < 30 {
			c := Dial(t, s.Addr)
			line := s.NextLine(t)
			if line == "Server: cannot accept connections: too many open files; turning new clients away until one leaves" {
				require.Equal(t, "Server: too many connections, try again later\r\n", c.ReadLine(t))
				c.ExpectEOF(t)
				break
			}
			require.Equal(t, stage5Connected, line)
			clients = append(clients, c)
		}
		require.Less(t, len(clients), 30, "the descriptor limit was never reached")

		// Everyone after is turned away at once too, and it is said only once.
		for range 3 {
			c := Dial(t, s.Addr)
			require.Equal(t, "Server: too many connections, try again later\r\n", c.ReadLine(t))
			c.ExpectEOF(t)
		}
		s.ExpectNoLine(t, 200*time.Millisecond)
		if CPUSupported {
			expectAsleep(t, s, time.Second)
		}

		// 9 MB of 60 KB lines: enough garbage for Go's collector to run, and its timers to need
		// the runtime's own poller, which must not need a descriptor now. Every client but the
		// receiver and the one that leaves below sends, so that flood control (flood.go) reads
		// them at several times its rate.
		receiver := clients[1]
		senders := append([]*Client{clients[0]}, clients[3:]...)
		line := strings.Repeat("x", 60_000)
		relaySpread(t, senders, receiver, line, 150, line+"\r\n")
		for range senders { // each sends over 400 KB, more than its burst: slowed down, once
			require.Equal(t, "Server: client slowed down: sending faster than 65536 bytes/s", s.NextLine(t))
		}
		require.False(t, s.Exited(), "stderr: %q", s.Stderr())

		clients[2].Close()
		require.Equal(t, stage5Disconnected, s.NextLine(t))
		require.Equal(t, "Server: turned 4 connections away while out of descriptors", s.NextLine(t))
		late := Dial(t, s.Addr)
		require.Equal(t, stage5Connected, s.NextLine(t))
		late.Send(t, "I got in\n")
		require.Equal(t, "I got in\r\n", receiver.ReadLine(t))
	})
}
