package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A signal the server does not stop for still cuts its wait short with EINTR: the loop must
// sleep again, not fail. To be sure that each signal lands while the loop is inside select or
// epoll_wait, the test finds the thread that is in that system call (from
// /proc/<pid>/task/<tid>/syscall) and sends SIGWINCH (a terminal was resized) to that thread,
// round after round.
func TestStage5Interrupted(t *testing.T) {
	forEachPoller(t, func(t *testing.T, poller string) {
		waits := loopWaitSyscalls[runtime.GOARCH][poller]
		if waits == 0 {
			t.Skipf("the system call of -poller %s on %s is not known to this test", poller, runtime.GOARCH)
		}
		s := StartServer(t, stage5, "-poller", poller)
		clients := s.DialClients(t, 2)
		for round := range 5 {
			tid := threadInSyscall(t, s.PID(), waits)
			require.NoError(t, syscall.Tgkill(s.PID(), tid, syscall.SIGWINCH))
			clients[0].Send(t, fmt.Sprintf("still up %d\n", round))
			require.Equal(t, fmt.Sprintf("still up %d\r\n", round), clients[1].ReadLine(t), "stderr: %q", s.Stderr())
		}
		require.False(t, s.Exited(), "stderr: %q", s.Stderr())
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
