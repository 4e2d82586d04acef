//go:build linux || darwin

package harness

import (
	"syscall"
	"testing"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
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
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "stalled", stage5, "-poller", poller, "-quiet", "-max-pending", "1048576")
		require.Contains(t, res.Output, "Server: client disconnected (not reading: more than 1048576 bytes pending)")
	})
}

// A client that stops reading for a while gets everything once it reads again, and after
// that the server stops watching it for writability (or the loop would spin): the check
// "catch-up". It is not dropped: 4 MB is under the default limit of 4 MiB.
func TestStage5SlowReaderCatchesUp(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		res := runCheck(t, 5, "catch-up", stage5, "-poller", poller, "-quiet")
		for _, line := range res.Output {
			require.NotContains(t, line, "not reading")
		}
	})
}

// epoll and kqueue have no such limit. The test stays at 2,000 clients to be kind to small
// machines; the server itself has been run with 10,000.
func TestStage5ManyClients(t *testing.T) {
	t.Parallel()
	const count = 2000
	needDescriptors(t, count+100)
	s := StartServer(t, stage5, "-poller", NativePoller())
	var before int64
	if CPUSupported {
		var err error
		before, err = tester.RSS(s.PID())
		require.NoError(t, err)
	}
	clients := s.DialClients(t, count)
	if CPUSupported {
		after, err := tester.RSS(s.PID())
		require.NoError(t, err)
		perClient := (after - before) / count
		t.Logf("resident memory: %d KiB before, %d KiB with %d clients (%d bytes each)", before>>10, after>>10, count, perClient)
		require.Less(t, perClient, int64(2048), "an idle client should cost little memory")
	}

	clients[count-1].Send("hello, everyone\n")
	for _, c := range clients[:count-1] {
		require.Equal(t, "hello, everyone\r\n", c.NextLine())
	}
	clients[0].Send("hello back\n")
	require.Equal(t, "hello back\r\n", clients[count-1].NextLine())
}
