package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// The harness's commands (cputable, fanout, soak, relaymem) build programs into a folder in
// the temporary directory and start servers. Ctrl-C must not leave either behind: the
// commands call CleanUpOnSignal, and every process started through StartProcess is tracked
// here so that it can be killed from the signal handler.

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

// CleanUpOnSignal makes SIGINT (Ctrl-C) and SIGTERM end a command without leaving anything
// behind: every process it started through this package is killed, a build under way is
// interrupted, the programs built so far are deleted, and the command exits with 130 or 143,
// the status a shell gives a program that such a signal killed.
func CleanUpOnSignal() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-signals
		StopAll()
		code := 130
		if sig == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
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

// Fatal ends a command that failed: it says why in one line, after the command's name, kills
// what the command started, deletes its builds and exits with status 1. While a signal is
// being handled it says nothing and waits: the failure is the signal's doing, and the handler
// exits.
func Fatal(format string, args ...any) {
	if Stopping() {
		select {}
	}
	fmt.Fprintf(os.Stderr, flag.CommandLine.Name()+": "+format+"\n", args...)
	StopAll()
	os.Exit(1)
}

// SetUsage gives the command's -h a first line with its own name and what it does, instead of
// the path of the executable that `go run` built in its cache.
func SetUsage(name, what string) {
	flag.CommandLine.Init(name, flag.ExitOnError)
	flag.CommandLine.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprintf(out, "Usage: go run ./harness/cmd/%s [flags]\n\n%s\nFlags:\n", name, tester.Wrap(what, "", "", 80))
		PrintFlags(out, flag.CommandLine)
	}
}

// PrintFlags is flag.PrintDefaults with each flag's text wrapped to 80 columns, since -h is
// read in terminals of that width.
func PrintFlags(out io.Writer, flags *flag.FlagSet) {
	flags.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		switch {
		case f.DefValue == "" || f.DefValue == "false" || f.DefValue == "0" || f.DefValue == "0s":
		case fmt.Sprintf("%T", f.Value) == "*flag.stringValue":
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		default:
			usage += fmt.Sprintf(" (default %v)", f.DefValue)
		}
		fmt.Fprintln(out, line)
		fmt.Fprint(out, tester.Wrap(usage, "        ", "        ", 80))
	})
}

// Thousands formats 1234567.8 as "1,234,568", for the reports of the benchmark commands.
func Thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
