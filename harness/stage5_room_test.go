//go:build linux || darwin

package harness

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Stage 5 in a hostile room: nothing lost, nothing frozen.

// A client that sends a line and closes at once has said it all the same. Here 700 connected
// clients do so while the server is stopped, so that it finds them all at once. epoll hands them over 256 at a
// time: relaying the first ones writes to the others, whose kernels answer with resets, and a
// server that disconnected a client on its next failed write without reading it first would
// lose its last words.
func TestStage5LastWords(t *testing.T) {
	const count = 700
	needDescriptors(t, count+100)
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller, "-quiet")
		clients := s.DialClients(t, count+2)
		receiver, leaving := clients[0], clients[1:]
		s.Signal(t, syscall.SIGSTOP)
		waitStopped(t, s.PID())
		for i, c := range leaving[:count] {
			c.Send(t, fmt.Sprintf("bye %d\n", i))
			c.Close()
		}
		// A last line with no "\n" before the end of the stream is a line too.
		leaving[count].Send(t, "no newline at the end")
		leaving[count].Close()
		s.Signal(t, syscall.SIGCONT)

		got := map[string]int{}
		for range count + 1 {
			got[receiver.ReadLine(t)]++
		}
		for i := range count {
			require.Equal(t, 1, got[fmt.Sprintf("bye %d\r\n", i)], "bye %d", i)
		}
		require.Equal(t, 1, got["no newline at the end\r\n"])
		receiver.ExpectNothing(t, 100*time.Millisecond)
	})
}

// A log that nobody reads (a pipe whose reader stopped, a terminal paused with Ctrl-S) must
// not stop the relay, nor a shutdown: lines that do not fit in the backlog are dropped, and
// counted once the log moves again.
func TestStage5BlockedLog(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		stdout, w, err := os.Pipe()
		require.NoError(t, err)
		defer stdout.Close()
		cmd := exec.Command(Binary(t, stage5), "-addr", "127.0.0.1:0", "-poller", poller)
		cmd.Stdout = w
		require.NoError(t, cmd.Start())
		w.Close()
		var waitErr error
		exited := make(chan struct{})
		go func() { waitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })

		log := bufio.NewReader(stdout)
		readLog := func() string {
			line, err := log.ReadString('\n')
			require.NoError(t, err)
			return strings.TrimSuffix(line, "\n")
		}
		m := regexp.MustCompile(`port (\d+)\.\.\.$`).FindStringSubmatch(readLog())
		require.NotNil(t, m)
		readLog() // the poller's line
		addr := "127.0.0.1:" + m[1]
		receiver := Dial(t, addr)
		senders := make([]*Client, 24) // 12 per flood: see below
		for i := range 1 + len(senders) {
			if i > 0 {
				senders[i-1] = Dial(t, addr)
			}
			require.Equal(t, stage5Connected, readLog())
		}

		// From here on nobody reads the log. 3 MB of messages make 3 MB of log lines: more
		// than the pipe holds and the server's backlog of 1 MiB together. Each flood comes
		// from 12 senders of 250 KB, each within its burst (flood.go).
		flood := func(tag string, senders []*Client) {
			line := tag + strings.Repeat("-", 1000)
			relaySpread(t, senders, receiver, line, 3000, line+"\r\n")
		}
		flood("first", senders[:12])

		// Read the log again: everything it kept comes out, then the count of what it dropped.
		dropped := regexp.MustCompile(`^Server: \d+ log lines dropped: standard output is not being read$`)
		for {
			line := readLog()
			if dropped.MatchString(line) {
				break
			}
			require.True(t, strings.HasPrefix(line, "Server: received from client: first-"), "log line %q", line)
		}

		// Blocked again, a shutdown still happens, at once.
		flood("second", senders[12:])
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-exited:
			require.NoError(t, waitErr, "exit status")
		case <-time.After(5 * time.Second):
			t.Fatal("SIGTERM did not stop a server whose log is blocked")
		}
		receiver.ExpectEOF(t)
	})
}

// On SIGTERM the server stops accepting and reading, and gives what it has queued a second to
// go out: a client that reads gets every whole line that was queued for it, then the end of
// the stream; one that never reads is cut off after that second.
func TestStage5ShutdownDelivers(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller, "-quiet", "-max-pending", "16777216")
		// 8 MB: more than the kernels buffer for late and stalled (about 3 MB on Linux), less
		// than -max-pending, from 32 senders within their burst (flood.go). Once healthy has it
		// all, the server has read it all, and queued the rest for late and stalled.
		const count = 80_000
		senders := make([]*Client, floodSenderCount(count))
		for i := range senders {
			senders[i] = Dial(t, s.Addr)
		}
		healthy := Dial(t, s.Addr)
		late, stalled := dialSmallReceiveBuffer(t, s.Addr), dialSmallReceiveBuffer(t, s.Addr)
		for range len(senders) + 3 {
			require.Equal(t, stage5Connected, s.NextLine(t))
		}
		relayed := func(_ int, line string) string { return line + "\r\n" }
		sent := spreadFlood(senders, count, false)
		expectSpreadFlood(t, healthy, count, relayed)
		require.NoError(t, <-sent)

		start := time.Now()
		s.Signal(t, syscall.SIGTERM)
		require.Equal(t, "Server: shutting down", s.NextLine(t))
		expectSpreadFlood(t, late, count, relayed)
		late.ExpectEOF(t)
		healthy.ExpectEOF(t)
		require.Equal(t, 0, s.WaitExit(t, 5*time.Second))
		require.Less(t, time.Since(start), 3*time.Second)
		require.Equal(t, "Server: cut off 1 clients that did not take their output within a second", s.NextLine(t))
		stalled.ExpectClosed(t)
	})
}

// A client that fell far behind holds a long queue; once it has caught up, the queue is given
// back, not kept at its largest for the rest of the client's life. SIGUSR1 makes the server
// print each client's queue.
func TestStage5QueueGivenBack(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller, "-quiet", "-max-pending", "67108864")
		// One line per write, so that the server reads them in many small batches; 6 MB, more
		// than the kernels buffer for late (about 3 MB on Linux), from 24 senders within their
		// burst (flood.go). late connects first: its queue is the first one printed.
		const count = 60_000
		late := dialSmallReceiveBuffer(t, s.Addr)
		senders := make([]*Client, floodSenderCount(count))
		for i := range senders {
			senders[i] = Dial(t, s.Addr)
		}
		for range 1 + len(senders) {
			require.Equal(t, stage5Connected, s.NextLine(t))
		}
		sent := spreadFlood(senders, count, true)
		select {
		case err := <-sent:
			require.NoError(t, err)
		case <-time.After(6 * Deadline):
			t.Fatal("the senders could not send their lines")
		}
		// Wait until the queue for late has stopped growing: the server has read it all.
		var queues []queueLine
		for deadline := time.Now().Add(Deadline); ; time.Sleep(100 * time.Millisecond) {
			require.True(t, time.Now().Before(deadline), "the queue for late never settled: %v", queues)
			before := queues
			queues = printQueues(t, s)
			if len(queues) > 0 && len(before) > 0 && before[0] == queues[0] {
				break
			}
		}
		require.Greater(t, queues[0].batches, 64, "late should be far behind, in many batches")
		t.Logf("behind: %+v", queues[0])
		expectSpreadFlood(t, late, count, func(_ int, line string) string { return line + "\r\n" })
		late.ExpectNothing(t, 100*time.Millisecond)
		for _, q := range printQueues(t, s) {
			require.Zero(t, q.bytes)
			require.LessOrEqual(t, q.room, 64, "a queue that has caught up keeps room for %d batches", q.room)
		}
	})
}

type queueLine struct{ bytes, batches, room int }

var queueLinePattern = regexp.MustCompile(`^Server: client on descriptor \d+: (\d+) bytes waiting in (\d+) batches, room for (\d+)$`)

// printQueues asks the server for its queues (SIGUSR1) and reads them from its log.
func printQueues(t *testing.T, s *Server) []queueLine {
	t.Helper()
	s.Signal(t, syscall.SIGUSR1)
	header := s.NextLine(t)
	m := regexp.MustCompile(`^Server: (\d+) clients$`).FindStringSubmatch(header)
	require.NotNil(t, m, "got %q", header)
	n, _ := strconv.Atoi(m[1])
	queues := make([]queueLine, n)
	for i := range queues {
		line := s.NextLine(t)
		m := queueLinePattern.FindStringSubmatch(line)
		require.NotNil(t, m, "got %q", line)
		queues[i].bytes, _ = strconv.Atoi(m[1])
		queues[i].batches, _ = strconv.Atoi(m[2])
		queues[i].room, _ = strconv.Atoi(m[3])
	}
	return queues
}

// A storm of connections is accepted a bounded number per pass, so that a client already
// there is served between two handfuls instead of after the whole storm.
func TestStage5AcceptStorm(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		storm := map[string]int{"select": 900}[poller]
		if storm == 0 {
			storm = 2000
		}
		needDescriptors(t, uint64(storm+100))
		s := StartServer(t, stage5, "-poller", poller)
		clients := s.DialClients(t, 2)
		s.Signal(t, syscall.SIGSTOP)
		waitStopped(t, s.PID())
		for range storm {
			Dial(t, s.Addr) // queued by the kernel while the server sleeps
		}
		s.Signal(t, syscall.SIGCONT)
		clients[0].Send(t, "during the storm\n")
		require.Equal(t, "during the storm\r\n", clients[1].ReadLine(t))
		connected := 0
		for line := s.NextLine(t); line != "Server: received from client: during the storm"; line = s.NextLine(t) {
			require.Equal(t, stage5Connected, line)
			connected++
		}
		t.Logf("the line was relayed after %d of %d connections", connected, storm)
		require.Less(t, connected, storm/2, "the storm held up a client that was already there")
	})
}
