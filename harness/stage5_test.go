//go:build linux || darwin

package harness

import (
	"io"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// Stage 5's tests run once per poller: select everywhere, and this system's own poller.
const stage5 = "stage5-select"

const (
	connected    = "Server: client connected"
	disconnected = "Server: client disconnected"
)

// nativePoller is the poller stage 5 offers besides select on this system.
func nativePoller() string {
	if runtime.GOOS == "darwin" {
		return "kqueue"
	}
	return "epoll"
}

// forEachPoller runs test as one subtest per poller.
func forEachPoller(t *testing.T, test func(t *testing.T, poller string)) {
	for _, poller := range []string{"select", nativePoller()} {
		t.Run(poller, func(t *testing.T) { test(t, poller) })
	}
}

// connectClients dials n clients and waits for the server to log each one.
func connectClients(t *testing.T, s *Server, n int) []*Client {
	t.Helper()
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = Dial(t, s.Addr)
		require.Equal(t, connected, s.NextLine(t))
	}
	return clients
}

// expectIdle fails if the server uses more than 2% of a core over window.
func expectIdle(t *testing.T, s *Server, window time.Duration) {
	t.Helper()
	use := CPUUse(t, s.Process, window)
	require.Less(t, use, 0.02, "an idle server should sleep in the kernel, but it used %.0f%% of a core", use*100)
}

func TestStage5Broadcast(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 3)
		sender, a, b := clients[0], clients[1], clients[2]

		sender.Send(t, "Hello\r\n")
		require.Equal(t, "Server: received from client: Hello", s.NextLine(t))
		require.Equal(t, "Hello\r\n", a.ReadLine(t))
		require.Equal(t, "Hello\r\n", b.ReadLine(t))
		sender.ExpectNothing(t, 300*time.Millisecond) // not echoed to its sender

		a.Send(t, "How are you?\n")
		require.Equal(t, "How are you?\r\n", sender.ReadLine(t))
		require.Equal(t, "How are you?\r\n", b.ReadLine(t))
		a.ExpectNothing(t, 100*time.Millisecond)
	})
}

// The article's last listing loses whatever one read brings beyond the first line: stage 5
// keeps an input buffer per client.
func TestStage5Framing(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 2)
		sender, receiver := clients[0], clients[1]

		sender.Send(t, "first\r\nsecond\n") // two lines in one write
		require.Equal(t, "first\r\n", receiver.ReadLine(t))
		require.Equal(t, "second\r\n", receiver.ReadLine(t))

		sender.Send(t, "a line in ") // one line in two writes
		receiver.ExpectNothing(t, 200*time.Millisecond)
		sender.Send(t, "two writes\r\n")
		require.Equal(t, "a line in two writes\r\n", receiver.ReadLine(t))

		sender.Send(t, "\r\n") // an empty line is relayed, and its sender stays
		require.Equal(t, "\r\n", receiver.ReadLine(t))
		receiver.Send(t, "still there?\n")
		require.Equal(t, "still there?\r\n", sender.ReadLine(t))

		want := []string{
			"Server: received from client: first",
			"Server: received from client: second",
			"Server: received from client: a line in two writes",
			"Server: received from client: ",
			"Server: received from client: still there?",
		}
		var got []string
		for range want {
			got = append(got, s.NextLine(t))
		}
		require.Empty(t, cmp.Diff(want, got))
	})
}

// Bytes go to the clients exactly as they came; only the server's own log escapes control
// bytes, so that a client cannot drive the instructor's terminal.
func TestStage5BinaryVerbatim(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 2)

		message := "nul\x00 bad utf-8 \xff\xfe esc \x1b[2J tab\tdel\x7f é"
		clients[0].Send(t, message+"\n")
		require.Equal(t, message+"\r\n", clients[1].ReadLine(t))
		require.Equal(t, `Server: received from client: nul\x00 bad utf-8 `+"\xff\xfe"+` esc \x1b[2J tab`+"\t"+`del\x7f é`,
			s.NextLine(t))
	})
}

// A line longer than -max-line gets its sender disconnected; no part of it reaches anyone.
func TestStage5LongLine(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 3)
		sender, a, b := clients[0], clients[1], clients[2]

		// The server may close the connection before the megabyte is sent: write it from a
		// goroutine and ignore the error it gets then.
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			sender.Conn.SetWriteDeadline(time.Now().Add(Deadline))
			sender.Conn.Write([]byte(strings.Repeat("x", 1<<20) + "\n"))
		}()
		require.Equal(t, "Server: client disconnected (line longer than 65536 bytes)", s.NextLine(t))
		sender.ExpectClosed(t)
		<-sent
		a.ExpectNothing(t, 300*time.Millisecond)

		b.Send(t, "after the long line\n")
		require.Equal(t, "after the long line\r\n", a.ReadLine(t))
		require.Equal(t, "Server: received from client: after the long line", s.NextLine(t))
	})
}

// The limit counts the message, not its terminator, and also applies to a line still unfinished.
func TestStage5LineLimitEdge(t *testing.T) {
	s := StartServer(t, stage5, "-max-line", "10")
	clients := connectClients(t, s, 3)
	clients[0].Send(t, "0123456789\r\n") // exactly 10 bytes: relayed
	require.Equal(t, "0123456789\r\n", clients[1].ReadLine(t))
	require.Equal(t, "Server: received from client: 0123456789", s.NextLine(t))

	clients[0].Send(t, "0123456789\r") // 10 bytes and half a terminator: still fine
	clients[0].ExpectNothing(t, 200*time.Millisecond)
	clients[0].Send(t, "\n")
	require.Equal(t, "0123456789\r\n", clients[1].ReadLine(t))

	clients[2].Send(t, "0123456789ab") // 12 bytes and no end yet: dropped without waiting for it
	require.Equal(t, "Server: received from client: 0123456789", s.NextLine(t))
	require.Equal(t, "Server: client disconnected (line longer than 10 bytes)", s.NextLine(t))
	clients[2].ExpectClosed(t)
	clients[1].ExpectNothing(t, 200*time.Millisecond)
}

// An idle server sleeps in the kernel, even after a client has left (stage 3's loop would
// spin on the closed socket).
func TestStage5Idle(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 51)
		clients[50].Close()
		require.Equal(t, disconnected, s.NextLine(t))
		expectIdle(t, s, 2*time.Second)
	})
}

// A reset connection and a half-closed one are both clients that left: logged, forgotten,
// and the loop goes back to sleep (a half-closed socket is readable forever).
func TestStage5ResetAndHalfClose(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 4)

		require.NoError(t, clients[0].Conn.(*net.TCPConn).SetLinger(0)) // close sends a reset
		clients[0].Close()
		require.Equal(t, disconnected, s.NextLine(t))

		require.NoError(t, clients[1].Conn.(*net.TCPConn).CloseWrite())
		require.Equal(t, disconnected, s.NextLine(t))
		clients[1].ExpectClosed(t)

		clients[2].Send(t, "anyone left?\n")
		require.Equal(t, "anyone left?\r\n", clients[3].ReadLine(t))
		require.Equal(t, "Server: received from client: anyone left?", s.NextLine(t))
		if CPUSupported {
			expectIdle(t, s, time.Second)
		}
	})
}

// When one pass handles several events, handling an early one may drop a client whose own
// event comes later in the same pass: that event is stale and must be ignored. Here the
// receiver's output limit is 10 bytes, so the first line it is sent drops it.
func TestStage5StaleEvent(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller, "-max-pending", "10")
		clients := connectClients(t, s, 2)
		s.Signal(t, syscall.SIGSTOP) // frozen, so that both clients are ready in one pass
		clients[0].Send(t, "longer than ten bytes\n")
		clients[1].Send(t, "x\n")
		s.Signal(t, syscall.SIGCONT)
		require.Equal(t, "Server: received from client: longer than ten bytes", s.NextLine(t))
		require.Equal(t, "Server: client disconnected (not reading: more than 10 bytes pending)", s.NextLine(t))
		clients[1].ExpectClosed(t)

		late := Dial(t, s.Addr)
		require.Equal(t, connected, s.NextLine(t))
		clients[0].Send(t, "hi\n")
		require.Equal(t, "hi\r\n", late.ReadLine(t))
		require.Equal(t, "Server: received from client: hi", s.NextLine(t))
	})
}

// SIGINT (Ctrl-C) and SIGTERM stop the server cleanly: every client sees the end of the
// stream, and the exit status is 0.
func TestStage5Signals(t *testing.T) {
	for name, sig := range map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM} {
		t.Run(name, func(t *testing.T) {
			forEachPoller(t, func(t *testing.T, poller string) {
				s := StartServer(t, stage5, "-poller", poller)
				clients := connectClients(t, s, 2)
				start := time.Now()
				s.Signal(t, sig)
				require.Equal(t, 0, s.WaitExit(t, 5*time.Second), "exit status after %v", sig)
				require.Less(t, time.Since(start), 2*time.Second, "the server should stop within a second")
				require.Equal(t, "Server: shutting down", s.NextLine(t))
				for _, c := range clients {
					require.NoError(t, c.Conn.SetReadDeadline(time.Now().Add(Deadline)))
					_, err := c.Conn.Read(make([]byte, 1))
					require.ErrorIs(t, err, io.EOF, "after %v, a client should read end of file", sig)
				}
			})
		})
	}
}

// A signal that the server does not stop for still wakes select/epoll_wait early with
// EINTR: the loop must go back to sleep, not fail.
func TestStage5Interrupted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SIGWINCH interrupting the wait is checked on Linux")
	}
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := connectClients(t, s, 2)
		for range 20 {
			s.Signal(t, syscall.SIGWINCH)
			time.Sleep(10 * time.Millisecond)
		}
		clients[0].Send(t, "still up\n")
		require.Equal(t, "still up\r\n", clients[1].ReadLine(t))
		require.False(t, s.Exited(), "stderr: %q", s.Stderr())
	})
}

// -poller names a poller this system has; anything else is misuse of the flag: one line, exit 2.
func TestStage5BadPoller(t *testing.T) {
	other := map[string]string{"epoll": "kqueue", "kqueue": "epoll"}[nativePoller()]
	for _, name := range []string{"nope", other} {
		p := Start(t, Binary(t, stage5), nil, "-addr", "127.0.0.1:0", "-poller", name)
		require.Equal(t, 2, p.WaitExit(t, Deadline), "-poller %s", name)
		require.Empty(t, p.Lines())
		stderr := p.Stderr()
		require.Equal(t, 1, strings.Count(stderr, "\n"), "one line on stderr, got %q", stderr)
		require.True(t, strings.HasPrefix(stderr, stage5+": -poller "+name+" "), "got %q", stderr)
		require.Contains(t, stderr, "select or "+nativePoller())
	}
}
