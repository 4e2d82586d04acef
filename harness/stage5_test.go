//go:build linux || darwin

package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// Stage 5's tests run once per poller: select everywhere, and this system's own poller.
const stage5 = "stage5-select"

const (
	stage5Connected    = "Server: client connected"
	stage5Disconnected = "Server: client disconnected"
)

// forEachPoller runs test as one subtest per poller, side by side: each has a server of its
// own, and waits on sockets, not on a CPU.
func forEachPoller(t *testing.T, test func(t *testing.T, poller string)) {
	for _, poller := range []string{"select", NativePoller()} {
		t.Run(poller, func(t *testing.T) {
			t.Parallel()
			test(t, poller)
		})
	}
}

// forEachPollerInTurn is forEachPoller one poller after the other, for a test that measures
// time and must not share the cores with its twin.
func forEachPollerInTurn(t *testing.T, test func(t *testing.T, poller string)) {
	for _, poller := range []string{"select", NativePoller()} {
		t.Run(poller, func(t *testing.T) { test(t, poller) })
	}
}

// expectAsleep fails if the server uses more than 2% of a core over window, and over the
// window after it: Go's runtime may tidy up once after the work just done (the tester's
// idleCPU says more), where a loop that does not sleep spins through both.
func expectAsleep(t *testing.T, s *Server, window time.Duration) {
	t.Helper()
	use := CPUUse(t, s.Process, window)
	if use >= 0.02 {
		use = min(use, CPUUse(t, s.Process, window))
	}
	require.Less(t, use, 0.02, "an idle server should sleep in the kernel, but it used %.0f%% of a core", use*100)
}

// Every line to every other client, not its sender, also after a client leaves or vanishes
// with a reset, long lines whole and bytes that are not text relayed: the checks "broadcast",
// "leave", "reset", "whole-lines" and "not-text", under each poller.
func TestStage5Broadcast(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "broadcast", stage5, "-poller", poller)
		require.Equal(t, received("Hello", "Hola"), logOnly(res.Output, received("Hello", "Hola")))
		require.Equal(t, `\r\n`, res.Notes["ending"])
		for _, check := range []string{"leave", "reset", "whole-lines", "not-text"} {
			runCheck(t, 5, check, stage5, "-poller", poller)
		}
	})
}

// The article's last listing loses whatever one read brings beyond the first line: stage 5
// keeps an input buffer per client (the check "framing").
func TestStage5Framing(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "framing", stage5, "-poller", poller)
		want := received("first", "second", "a line in two writes")
		require.Equal(t, want, logOnly(res.Output, want))
	})
}

// An empty line is relayed, and its sender stays.
func TestStage5EmptyLine(t *testing.T) {
	t.Parallel()
	s := StartServer(t, stage5)
	clients := s.DialClients(t, 2)
	sender, receiver := clients[0], clients[1]
	sender.Send("\r\n")
	require.Equal(t, "\r\n", receiver.NextLine())
	receiver.Send("still there?\n")
	require.Equal(t, "still there?\r\n", sender.NextLine())
	s.ExpectLines(t, received("", "still there?")...)
}

// Bytes go to the clients exactly as they came. (Stage 5 prints them to its log as they came
// too; stage 6's log escapes what is not printable, TestStage6LogEscapes.)
func TestStage5BinaryVerbatim(t *testing.T) {
	t.Parallel()
	expectBinaryRelayed(t, stage5, "Server: received from client: "+notText)
}

// notText is a line of bytes that are not all printable text.
const notText = "nul\x00 bad utf-8 \xff\xfe esc \x1b[2J tab\tdel\x7f é"

// expectBinaryRelayed has a client of pkg send notText, which the other must receive as it
// came, and the server log as logged.
func expectBinaryRelayed(t *testing.T, pkg, logged string) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, pkg, "-poller", poller)
		clients := s.DialClients(t, 2)
		clients[0].Send(notText + "\n")
		require.Equal(t, notText+"\r\n", clients[1].NextLine())
		require.Equal(t, logged, s.NextLine(t))
	})
}

// A line longer than -max-line gets its sender disconnected; no part of it reaches anyone.
func TestStage5LongLine(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := s.DialClients(t, 3)
		sender, a, b := clients[0], clients[1], clients[2]

		// A megabyte with no end of line: the server must not wait for one. It may close the
		// connection before all is sent: write from a goroutine and ignore the error then.
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			sender.Conn.SetWriteDeadline(time.Now().Add(Deadline))
			sender.Conn.Write([]byte(strings.Repeat("x", 1<<20)))
		}()
		require.Equal(t, "Server: client disconnected (line longer than 65536 bytes)", s.NextLine(t))
		require.Equal(t, "Server: line longer than 65536 bytes, disconnecting you\r\n", sender.NextLine())
		sender.ExpectClosed("")
		<-sent
		a.ExpectNothing(300*time.Millisecond, "")

		b.Send("after the long line\n")
		require.Equal(t, "after the long line\r\n", a.NextLine())
		require.Equal(t, "Server: received from client: after the long line", s.NextLine(t))
	})
}

// The limit counts the message, not its terminator. A complete line over it drops its sender,
// and so does an unfinished one, without waiting for its end.
func TestStage5LineLimitEdge(t *testing.T) {
	t.Parallel()
	s := StartServer(t, stage5, "-max-line", "10")
	clients := s.DialClients(t, 4)
	sender, receiver, complete, unfinished := clients[0], clients[1], clients[2], clients[3]

	sender.Send("0123456789\r\n") // exactly 10 bytes: relayed
	require.Equal(t, "0123456789\r\n", receiver.NextLine())
	sender.Send("0123456789\r") // 10 bytes and half a terminator: still fine
	receiver.ExpectNothing(200*time.Millisecond, "")
	sender.Send("\n")
	require.Equal(t, "0123456789\r\n", receiver.NextLine())
	for range 2 {
		require.Equal(t, "Server: received from client: 0123456789", s.NextLine(t))
	}

	// A client the server drops is told why in one last line before the end of the stream
	// (after the two lines it was sent above).
	for _, c := range []*tester.Client{complete, unfinished} {
		for range 2 {
			require.Equal(t, "0123456789\r\n", c.NextLine())
		}
	}
	complete.Send("0123456789a\r\n")
	require.Equal(t, "Server: client disconnected (line longer than 10 bytes)", s.NextLine(t))
	require.Equal(t, "Server: line longer than 10 bytes, disconnecting you\r\n", complete.NextLine())
	complete.ExpectEOF()
	unfinished.Send("0123456789ab")
	require.Equal(t, "Server: client disconnected (line longer than 10 bytes)", s.NextLine(t))
	require.Equal(t, "Server: line longer than 10 bytes, disconnecting you\r\n", unfinished.NextLine())
	unfinished.ExpectEOF()
	receiver.ExpectNothing(200*time.Millisecond, "")
	sender.ExpectNothing(100*time.Millisecond, "")
}

// An idle server sleeps in the kernel, even after a client has left (stage 3's loop would
// spin on the closed socket): the check "idle-cpu".
func TestStage5Idle(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "idle-cpu", stage5, "-poller", poller)
		if CPUSupported {
			require.Contains(t, res.Output, stage5Disconnected, "the client that left was noticed")
		}
	})
}

// waitStopped waits until every thread of process pid has stopped (after SIGSTOP), so that the
// server is not halfway through a wait that has already seen one ready socket.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		time.Sleep(200 * time.Millisecond) // no /proc: give the signal time to land
		return
	}
	for deadline := time.Now().Add(Deadline); ; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "process %d did not stop", pid)
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		require.NoError(t, err)
		stopped := 0
		for _, task := range tasks {
			data, err := os.ReadFile(task)
			if err == nil {
				// The state follows the command name, which is in parentheses.
				fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
				if len(fields) > 0 && (fields[0] == "T" || fields[0] == "t") {
					stopped++
				}
			}
		}
		if len(tasks) > 0 && stopped == len(tasks) {
			return
		}
	}
}

// -poller names a poller this system has; anything else is misuse of the flag: one line, exit 2.
func TestStage5BadPoller(t *testing.T) {
	t.Parallel()
	other := map[string]string{"epoll": "kqueue", "kqueue": "epoll"}[NativePoller()]
	for _, name := range []string{"nope", other} {
		p := Start(t, Binary(t, stage5), nil, "-addr", "127.0.0.1:0", "-poller", name)
		require.Equal(t, 2, p.WaitExit(t, Deadline), "-poller %s", name)
		require.Empty(t, p.Lines())
		stderr := p.Stderr()
		require.Equal(t, 1, strings.Count(stderr, "\n"), "one line on stderr, got %q", stderr)
		require.True(t, strings.HasPrefix(stderr, stage5+": -poller "+name+" "), "got %q", stderr)
		require.Contains(t, stderr, "select or "+NativePoller())
	}
}
