//go:build linux

package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// children lists the processes whose parent is pid, by name.
func children(t *testing.T, pid int) map[int]string {
	t.Helper()
	out := map[int]string{}
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, task := range tasks {
		data, _ := os.ReadFile(task)
		for _, field := range strings.Fields(string(data)) {
			child, _ := strconv.Atoi(field)
			comm, _ := os.ReadFile("/proc/" + field + "/comm")
			out[child] = strings.TrimSpace(string(comm))
		}
	}
	return out
}

// expectCleanInterrupt starts a harness command with a temporary directory of its own, waits
// until it has started what ready says, sends SIGINT, and checks that it exits with 130,
// leaving no process and nothing in the temporary directory behind.
func expectCleanInterrupt(t *testing.T, bin string, ready func(tmp string, kids map[int]string) bool, args ...string) {
	tmp := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	var kids map[int]string
	for deadline := time.Now().Add(Deadline); ; time.Sleep(10 * time.Millisecond) {
		kids = children(t, cmd.Process.Pid)
		if ready(tmp, kids) {
			break
		}
		require.False(t, time.Now().After(deadline), "not ready within %v; children %v", Deadline, kids)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case <-exited:
	case <-time.After(Deadline):
		t.Fatalf("still running %v after SIGINT", Deadline)
	}
	require.Equal(t, 130, cmd.ProcessState.ExitCode())
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "left in the temporary directory after SIGINT")
	for pid, name := range kids {
		// Killed and waited for, a child is gone; one left running would still answer signal 0.
		err := syscall.Kill(pid, 0)
		require.ErrorIs(t, err, syscall.ESRCH, "child %d (%s) still exists after SIGINT", pid, name)
	}
}

func serverRunning(name string) func(string, map[int]string) bool {
	return func(_ string, kids map[int]string) bool {
		for _, comm := range kids {
			if comm == name {
				return true
			}
		}
		return false
	}
}

func TestCPUTableCleansUpOnInterrupt(t *testing.T) {
	t.Parallel()
	bin := Binary(t, "harness/cmd/cputable")
	t.Run("while measuring", func(t *testing.T) {
		expectCleanInterrupt(t, bin, serverRunning("stage1-blocking"), "-window", "30s", "-clients", "1")
	})
	t.Run("while building", func(t *testing.T) {
		expectCleanInterrupt(t, bin, func(tmp string, kids map[int]string) bool {
			for _, comm := range kids {
				if comm == "go" {
					return true
				}
			}
			return false
		}, "-window", "30s", "-clients", "1")
	})
}

func TestFanoutCleansUpOnInterrupt(t *testing.T) {
	t.Parallel()
	bin := Binary(t, "harness/cmd/fanout")
	expectCleanInterrupt(t, bin, serverRunning("stage5-select"),
		"-targets", "epoll", "-workloads", "idle", "-idle-conns", "5", "-idle-window", "30s", "-pin=false")
}
