package harness

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// The harness's commands (harness/cmd) build programs into a folder in the temporary
// directory and start servers. Ctrl-C must not leave either behind: the commands call
// cli.CleanUpOnSignal, and every process started through StartProcess is tracked here so that
// StopAll can kill it from the signal handler.

var (
	liveMu   sync.Mutex
	live     = map[*Process]bool{}
	stopping bool // a signal came: whatever starts now is killed at once

	buildContext, cancelBuilds = context.WithCancel(context.Background())
)

var errStopping = errors.New("stopping: a signal came")

// track notes a started process; during the clean-up after a signal it kills it instead.
func track(p *Process) error {
	liveMu.Lock()
	defer liveMu.Unlock()
	if stopping {
		p.running.Kill(0)
		return errStopping
	}
	live[p] = true
	return nil
}

// untrack forgets a process that has ended.
func untrack(p *Process) {
	liveMu.Lock()
	defer liveMu.Unlock()
	delete(live, p)
}

// buildCommand is the `go build` that BuildBinary runs, with its work folder (GOTMPDIR) inside
// buildDir: a go command interrupted by a signal leaves its work folder behind, and this way
// RemoveBuilds deletes it with the rest. A signal to this program interrupts the build, as
// Ctrl-C in a terminal would.
func buildCommand(dir, buildDir string, args ...string) *exec.Cmd {
	work := filepath.Join(buildDir, "go-tmp")
	_ = os.MkdirAll(work, 0o755) // if it fails, go build says so
	cmd := exec.CommandContext(buildContext, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTMPDIR="+work)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second // then it is killed
	return cmd
}

// StopAll kills every process started through this package that still runs (and any started
// from now on), and deletes the programs built so far.
func StopAll() {
	liveMu.Lock()
	stopping = true
	var running []*Process
	for p := range live {
		running = append(running, p)
	}
	liveMu.Unlock()
	for _, p := range running {
		p.Kill()
	}
	cancelBuilds()
	RemoveBuilds()
}

// Stopping says whether a signal is being handled. A command that fails then (its build was
// interrupted, its server killed) should say nothing and wait: the handler exits for it.
func Stopping() bool {
	liveMu.Lock()
	defer liveMu.Unlock()
	return stopping
}
