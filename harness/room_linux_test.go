package harness

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
	forEachRoom(t, func(t *testing.T, r *room) {
		r.start(t, "-quiet")
		ms := r.members(t, 3)
		speaker, receiver, leaver := ms[0], ms[1], ms[2]
		for _, m := range ms[:2] {
			r.expectQuiet(t, m, 50*time.Millisecond) // the notices of the joins, read
		}
		r.expectQuiet(t, leaver, 50*time.Millisecond)

		r.s.Signal(t, syscall.SIGSTOP)
		waitStopped(t, r.s.PID())
		speaker.Send(t, "for the leaver too\n")
		const count, size = 1000, 100 // 100 KB: more than one read, less than a fresh window
		var last strings.Builder
		for i := range count {
			last.WriteString(volumeLine(0, i, size))
		}
		last.WriteString("no newline at the end")
		leaver.Send(t, last.String())
		waitSent(t, leaver.Client)
		require.NoError(t, leaver.Conn.(*net.TCPConn).SetLinger(0)) // close with a reset
		leaver.Close()
		r.s.Signal(t, syscall.SIGCONT)

		next, spoken := 0, false
		for next < count || !spoken {
			line := r.read(t, receiver)
			if line == r.relayed(speaker, "for the leaver too") {
				spoken = true
				continue
			}
			require.Equal(t, r.relayed(leaver, strings.TrimSuffix(volumeLine(0, next, size), "\n")), line,
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
func waitSent(t testing.TB, c *Client) {
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
// limit is 1,024 descriptors; 400 in stage 6, where every join is told to everyone) raises
// the server's resident memory at its peak by less than 4 MiB, where a copy per receiver
// would need receivers x 64 KiB (125 MiB for 2,000). Memory is the kernel's own count, from
// /proc/<pid>/status: the peak (VmHWM) is reset once everyone has joined.
func TestRoomBroadcastMemory(t *testing.T) {
	forEachRoom(t, func(t *testing.T, r *room) {
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
		go sender.Send(t, message+"\r\n")
		parallel(ms, func(m *member) {
			m.Conn.SetReadDeadline(time.Now().Add(3 * Deadline))
			for {
				line, err := m.reader.ReadString('\n')
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
		after, err := ReadMemory(r.s.PID())
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
	forEachRoom(t, func(t *testing.T, r *room) {
		const stalledCount, maxPending, maxSenders, size = 64, 1 << 20, 48, 1000
		r.start(t, "-quiet", "-max-pending", strconv.Itoa(maxPending))
		senders := r.members(t, maxSenders)
		drainInput(t, senders)
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
			waitErr(t, sendVolume(senders[used:used+4], floodLinesPerSender(size), size, false), 3*Deadline, "the flood")
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && countDropped() < stalledCount; {
				time.Sleep(20 * time.Millisecond)
			}
		}
		require.Equal(t, stalledCount, countDropped(), "stalled readers dropped after %d senders' floods", used)
		after, err := ReadMemory(r.s.PID())
		require.NoError(t, err)
		extra := after.Peak - before.RSS
		t.Logf("%d stalled readers behind %d senders' %d KB: resident %d KiB before, peak %d KiB (+%d KiB); -max-pending is %d KiB",
			stalledCount, used, used*senderBudget/1000, before.RSS>>10, after.Peak>>10, extra>>10, maxPending>>10)
		require.Less(t, extra, int64(maxPending+12<<20), "%d stalled readers", stalledCount)
	})
}

// settledMemory waits for the server's resident memory to stop moving, resets its peak to
// now (clear_refs 5) and returns it.
func settledMemory(t testing.TB, pid int) Memory {
	t.Helper()
	var m Memory
	for deadline, last := time.Now().Add(Deadline), int64(-1); ; time.Sleep(200 * time.Millisecond) {
		var err error
		m, err = ReadMemory(pid)
		require.NoError(t, err)
		if m.RSS == last || !time.Now().Before(deadline) {
			break
		}
		last = m.RSS
	}
	require.NoError(t, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0))
	m, err := ReadMemory(pid)
	require.NoError(t, err)
	return m
}
