package harness

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// A signal the server does not stop for still cuts its wait short with EINTR: the loop must
// sleep again, not fail. SIGWINCH (a terminal was resized) goes to every thread of the server,
// so that it surely reaches the one sleeping in select or epoll_wait.
func TestStage5Interrupted(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage5, "-poller", poller)
		clients := s.DialClients(t, 2)
		for range 5 {
			threads, err := filepath.Glob("/proc/" + strconv.Itoa(s.PID()) + "/task/*")
			require.NoError(t, err)
			for _, thread := range threads {
				tid, err := strconv.Atoi(filepath.Base(thread))
				require.NoError(t, err)
				require.NoError(t, syscall.Tgkill(s.PID(), tid, syscall.SIGWINCH))
			}
		}
		clients[0].Send(t, "still up\n")
		require.Equal(t, "still up\r\n", clients[1].ReadLine(t))
		require.False(t, s.Exited(), "stderr: %q", s.Stderr())
	})
}
