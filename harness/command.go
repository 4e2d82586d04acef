package harness

import (
	"errors"
	"sync"
)

// The harness's commands (harness/cmd) build programs into a folder in the temporary
// directory and start servers. Ctrl-C must not leave either behind: the commands call
// cli.CleanUpOnSignal, and every process started through StartProcess is tracked here so that
// StopAll can kill it from the signal handler.

var (
	liveMu   sync.Mutex
	live     = map[*Process]bool{}
	stopping bool // a signal came: whatever starts now is killed at once
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
