package harness

import (
	"net"
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
