package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A client that sends its last lines and closes at once has said them all the same. Here the
// leaver's last 100 KB wait in the server's kernel together with the reset its close sends,
// so that the server's first read (64 KiB) cannot take them all; another client's line, read
// in the same pass, is queued for the leaver. Writing that line fails, since the leaver has
// gone: a server that then disconnected it at once, without reading what it left, would lose
// the rest of its lines. The server is stopped while all this arrives, so that one pass finds
// it all, under select as under epoll.
func TestRoomLastWords(t *testing.T) {
	t.Parallel()
	forEachRoom(t, hostileRooms, func(t *testing.T, r *room) {
		r.start(t, "-quiet")
		ms := r.members(t, 3)
		speaker, receiver, leaver := ms[0], ms[1], ms[2]
		for _, m := range ms[:2] {
			r.expectQuiet(t, m, 50*time.Millisecond) // the notices of the joins, read
		}
		r.expectQuiet(t, leaver, 50*time.Millisecond)

		r.s.Signal(t, syscall.SIGSTOP)
		waitStopped(t, r.s.PID())
		speaker.Send("for the leaver too\n")
		const count, size = 1000, 100 // 100 KB: more than one read, less than a fresh window
		var last strings.Builder
		for i := range count {
			last.WriteString(tester.NumberedLine(0, i, size, "\n"))
		}
		last.WriteString("no newline at the end")
		leaver.Send(last.String())
		waitSent(t, leaver.Client)
		leaver.Reset()
		r.s.Signal(t, syscall.SIGCONT)

		next, spoken := 0, false
		for next < count || !spoken {
			line := r.read(t, receiver)
			if line == r.relayed(speaker, "for the leaver too") {
				spoken = true
				continue
			}
			require.Equal(t, r.relayed(leaver, strings.TrimSuffix(tester.NumberedLine(0, next, size, "\n"), "\n")), line,
				"line %d of the leaver's last %d", next, count)
			next++
		}
		require.Equal(t, r.relayed(leaver, "no newline at the end"), r.read(t, receiver))
		require.Equal(t, r.left(leaver, ""), r.log(t))
		r.expectQuiet(t, receiver, 100*time.Millisecond)
	})
}

// waitSent waits until the kernel has handed everything c sent to the other side: nothing is
// left in its send queue (SIOCOUTQ), so that a close that resets cannot throw any of it away.
func waitSent(t testing.TB, c *tester.Client) {
	t.Helper()
	raw, err := c.Conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	for deadline := time.Now().Add(Deadline); ; time.Sleep(time.Millisecond) {
		var queued int
		var ioctlErr error
		require.NoError(t, raw.Control(func(fd uintptr) { queued, ioctlErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }))
		require.NoError(t, ioctlErr)
		if queued == 0 {
			return
		}
		require.True(t, time.Now().Before(deadline), "%d bytes still unsent after %v", queued, Deadline)
	}
}

// A broadcast is held once, however many receive it: its batch is shared by every receiver's
// queue, not copied into each. One line of 64 KiB to 2,000 receivers (900 under select, whose
// limit is 1,024 descriptors; 400 in stage 7, where every join is told to everyone) raises
// the server's resident memory at its peak by less than 4 MiB, where a copy per receiver
// would need receivers x 64 KiB (125 MiB for 2,000). tester.Memory is the kernel's own count, from
// /proc/<pid>/status: the peak (VmHWM) is reset once everyone has joined.
func TestRoomBroadcastMemory(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		receivers := 2000
		switch {
		case r.named:
			receivers = 400
		case r.poller == "select":
			receivers = 900
		}
		needDescriptors(t, uint64(receivers+100))
		r.start(t, "-quiet")
		sender := r.join(t)
		ms := r.members(t, receivers)
		before := settledMemory(t, r.s.PID())

		message := strings.Repeat("x", 65534) // the longest line, with its "\r\n": 64 KiB
		want := r.relayed(sender, message)
		failures := make(chan string, receivers)
		go sender.Send(message + "\r\n")
		parallel(ms, func(m *member) {
			m.Conn.SetReadDeadline(time.Now().Add(3 * Deadline))
			for {
				line, err := m.Reader.ReadString('\n')
				if err != nil || line == want {
					if err != nil {
						failures <- m.name + ": " + err.Error()
					}
					return
				}
				if !r.notice(line) {
					failures <- m.name + " got " + line[:min(len(line), 40)]
					return
				}
			}
		})
		close(failures)
		for failure := range failures {
			t.Fatal(failure)
		}
		after, err := tester.ReadMemory(r.s.PID())
		require.NoError(t, err)
		extra := after.Peak - before.RSS
		t.Logf("%d receivers: resident %d KiB before, peak %d KiB (+%d KiB); a copy each would be +%d KiB",
			receivers, before.RSS>>10, after.Peak>>10, extra>>10, receivers*64)
		require.Less(t, extra, int64(4<<20), "one line of 64 KiB to %d receivers", receivers)
	})
}

// 64 clients that never read (a small receive buffer, never read) sit behind a flood until
// each has more than -max-pending (1 MiB here) waiting, and is dropped. They all wait for the
// same lines, so the server holds about one backlog, shared: its peak rises by about
// -max-pending plus a few MiB, where a copy per reader would hold 64 of them (64 MiB). The
// flood comes from many senders, each within its flood budget.
func TestRoomStalledReadersMemory(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		const stalledCount, maxPending, maxSenders, size = 64, 1 << 20, 48, 1000
		r.start(t, "-quiet", "-max-pending", strconv.Itoa(maxPending))
		senders := r.members(t, maxSenders)
		drainInput(senders)
		stalled := make([]*member, stalledCount)
		for i := range stalled {
			stalled[i] = r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		}
		before := settledMemory(t, r.s.PID())

		dropped := regexp.MustCompile(`^Server: (client disconnected|m\d+ left) \(not reading: more than 1048576 bytes pending\)$`)
		countDropped := func() (n int) {
			for _, line := range r.s.Lines() {
				if dropped.MatchString(line) {
					n++
				}
			}
			return n
		}
		used := 0
		for ; used < maxSenders && countDropped() < stalledCount; used += 4 {
			waitErr(t, sendVolume(senders[used:used+4], floodLinesPerSender(size), size, 0, nil), 3*Deadline, "the flood")
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && countDropped() < stalledCount; {
				time.Sleep(20 * time.Millisecond)
			}
		}
		require.Equal(t, stalledCount, countDropped(), "stalled readers dropped after %d senders' floods", used)
		after, err := tester.ReadMemory(r.s.PID())
		require.NoError(t, err)
		extra := after.Peak - before.RSS
		t.Logf("%d stalled readers behind %d senders' %d KB: resident %d KiB before, peak %d KiB (+%d KiB); -max-pending is %d KiB",
			stalledCount, used, used*senderBudget/1000, before.RSS>>10, after.Peak>>10, extra>>10, maxPending>>10)
		require.Less(t, extra, int64(maxPending+12<<20), "%d stalled readers", stalledCount)
	})
}

// settledMemory waits for the server's resident memory to stop moving, resets its peak to
// now (clear_refs 5) and returns it.
func settledMemory(t testing.TB, pid int) tester.Memory {
	t.Helper()
	var m tester.Memory
	for deadline, last := time.Now().Add(Deadline), int64(-1); ; time.Sleep(200 * time.Millisecond) {
		var err error
		m, err = tester.ReadMemory(pid)
		require.NoError(t, err)
		if m.RSS == last || !time.Now().Before(deadline) {
			break
		}
		last = m.RSS
	}
	require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0))
	m, err := tester.ReadMemory(pid)
	require.NoError(t, err)
	return m
}

// Out of descriptors, accept fails with EMFILE. The server says so once, turns each new
// client away at once with a line (the spare descriptor trick) instead of leaving it hanging
// in the queue, keeps serving the room, and takes new clients again once one leaves.
//
// It must also survive its own runtime. Go's runtime opens descriptors of its own (an epoll and
// an eventfd: its poller) the first time anything arms a runtime timer, and dies with
// "netpollinit failed" if it cannot, so the server makes it open them at start-up. This test
// makes the runtime arm a timer at the limit: a backlog of a few MB queued for a client that
// does not read, then taken by it, leaves the heap larger than what is still in use, and the
// runtime's scavenger, which gives such memory back to the system, paces its work with a timer.
// (A relay alone, however long, does not: every line is freed as soon as it is written, and the
// heap never holds more than it uses.) The backlog comes from a dozen senders, each within its
// flood budget: at 24 descriptors, a dozen clients is all there is room for.
func TestRoomOutOfDescriptors(t *testing.T) {
	t.Parallel()
	forEachRoom(t, hostileRooms, func(t *testing.T, r *room) {
		// sh's ulimit lowers both the soft and the hard limit, so Go cannot raise it again.
		p := Start(t, "sh", nil, "-c", `ulimit -n 24 && exec "$0" "$@"`, Binary(t, r.pkg),
			"-addr", "127.0.0.1:0", "-poller", r.poller, "-quiet", "-max-pending", "33554432")
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the server's stderr: %.2500s", p.Stderr())
			}
		})
		s, err := Listening(p, r.pkg)
		require.NoError(t, err)
		r.s = s
		r.log = p.NextLine

		full := "Server: cannot accept connections: too many open files; turning new clients away until one leaves"
		ms := []*member{r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))} // ms[0] will fall behind
		for len(ms) < 30 {
			c := Dial(t, r.s.Addr)
			if line := r.log(t); line == full {
				require.Equal(t, r.tooMany(), c.NextLine())
				c.ExpectEOF()
				break
			} else {
				require.Equal(t, stage5Connected, line)
			}
			ms = append(ms, r.enterConnected(t, c))
		}
		require.Less(t, len(ms), 30, "the descriptor limit was never reached")
		require.GreaterOrEqual(t, len(ms), 5)
		// Everyone after is turned away at once too, and it is said only once.
		for range 3 {
			c := Dial(t, r.s.Addr)
			require.Equal(t, r.tooMany(), c.NextLine())
			c.ExpectEOF()
		}
		r.s.ExpectNoLine(t, 200*time.Millisecond)
		expectAsleep(t, r.s, 500*time.Millisecond)

		// The backlog: every sender's budget for the stalled client, which then reads it all.
		reader, senders := ms[1], ms[2:]
		drainInput(senders)
		r.flood(t, reader, senders)
		r.expectVolume(t, ms[0], senders, volumeLines, volumeSize) // the backlog, taken late

		// Then the room goes on talking for a few seconds, 10 KB a sender every 400 ms, well
		// within flood control's rate: the collections that follow wake the scavenger.
		drainInput(ms[:1])
		for round := range 8 {
			next := time.Now().Add(400 * time.Millisecond)
			waitErr(t, sendVolume(senders, 10, 1000, 0, nil), Deadline, "the talk")
			r.expectVolume(t, reader, senders, 10, 1000)
			require.False(t, r.s.Exited(), "round %d; stderr: %q", round, r.s.Stderr())
			time.Sleep(time.Until(next))
		}
		require.False(t, r.s.Exited(), "stderr: %q", r.s.Stderr())

		ms[2].Close()
		require.Equal(t, r.left(ms[2], ""), r.log(t))
		require.Equal(t, "Server: turned 4 connections away while out of descriptors", r.log(t))
		late := r.join(t)
		late.Send("I got in\n")
		require.Equal(t, r.relayed(late, "I got in"), r.read(t, reader))
	})
}

// A signal the server does not stop for still cuts its wait short with EINTR: the loop must
// sleep again, not fail. To be sure that each signal lands while the loop is inside select or
// epoll_wait, the test finds the thread that is in that system call (from
// /proc/<pid>/task/<tid>/syscall) and sends SIGWINCH (a terminal was resized) to that thread,
// round after round.
func TestRoomInterrupted(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		waits := loopWaitSyscalls[runtime.GOARCH][r.poller]
		if waits == 0 {
			t.Skipf("the system call of -poller %s on %s is not known to this test", r.poller, runtime.GOARCH)
		}
		r.start(t)
		ms := r.members(t, 2)
		for round := range 5 {
			tid := threadInSyscall(t, r.s.PID(), waits)
			require.NoError(t, syscall.Tgkill(r.s.PID(), tid, syscall.SIGWINCH))
			message := fmt.Sprintf("still up %d", round)
			ms[0].Send(message + "\n")
			require.Equal(t, r.relayed(ms[0], message), r.read(t, ms[1]), "stderr: %q", r.s.Stderr())
		}
		require.False(t, r.s.Exited(), "stderr: %q", r.s.Stderr())
	})
}

// loopWaitSyscalls is the system call each poller's wait makes, by architecture. Go's runtime
// waits in epoll_pwait itself; on amd64 the loop's epoll_wait is another call, so the test
// tells them apart.
var loopWaitSyscalls = map[string]map[string]int{
	"amd64": {"select": 270, "epoll": 232}, // pselect6, epoll_wait
	"arm64": {"select": 72, "epoll": 22},   // pselect6, epoll_pwait
}

// threadInSyscall waits until a thread of process pid is inside system call number nr, and
// returns its thread id.
func threadInSyscall(t *testing.T, pid, nr int) int {
	t.Helper()
	for deadline := time.Now().Add(Deadline); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
		require.NoError(t, err)
		for _, task := range tasks {
			data, err := os.ReadFile(filepath.Join(task, "syscall"))
			if err != nil {
				continue
			}
			// "running", or the call's number followed by its arguments.
			if fields := strings.Fields(string(data)); len(fields) > 0 && fields[0] == strconv.Itoa(nr) {
				tid, err := strconv.Atoi(filepath.Base(task))
				require.NoError(t, err)
				return tid
			}
		}
	}
	t.Fatalf("no thread of process %d entered system call %d within %v", pid, nr, Deadline)
	return 0
}
