// Package cli is what the harness's commands share about being a command: -h that fits 80
// columns, one way to fail, and Ctrl-C that leaves no server or build behind.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// OnSignal calls stop, once, when SIGINT (Ctrl-C) or SIGTERM comes; stop ends the command.
// The check command stops the learner's server this way; the others CleanUpOnSignal.
func OnSignal(stop func(sig os.Signal)) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() { stop(<-signals) }()
}

// CleanUpOnSignal makes SIGINT (Ctrl-C) and SIGTERM end a command without leaving anything
// behind: every process it started through package harness is killed, a build under way is
// interrupted, the programs built so far are deleted (and dirs, the command's own), and the
// command exits with 130 or 143, the status a shell gives a program that such a signal killed.
func CleanUpOnSignal(dirs ...string) {
	OnSignal(func(sig os.Signal) {
		harness.StopAll()
		for _, dir := range dirs {
			os.RemoveAll(dir)
		}
		code := 130
		if sig == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	})
}

// Fatal ends a command that failed: it says why in one line, after the command's name, kills
// what the command started, deletes its builds and exits with status 1. While a signal is
// being handled it says nothing and waits: the failure is the signal's doing, and the handler
// exits.
func Fatal(format string, args ...any) {
	if harness.Stopping() {
		select {}
	}
	fmt.Fprintf(os.Stderr, flag.CommandLine.Name()+": "+format+"\n", args...)
	harness.StopAll()
	os.Exit(1)
}

// SetUsage gives the command's -h a first line with its own name and what it does, instead of
// the path of the executable that `go run` built in its cache.
func SetUsage(name, what string) {
	flag.CommandLine.Init(name, flag.ExitOnError)
	flag.CommandLine.Usage = func() {
		out := flag.CommandLine.Output()
		fmt.Fprintf(out, "Usage: go run ./harness/cmd/%s [flags]\n\n%s\nFlags:\n", name, tester.Wrap(what, "", "", 80))
		printFlags(out, flag.CommandLine)
	}
}

// printFlags is flag.PrintDefaults with each flag's text wrapped to 80 columns, since -h is
// read in terminals of that width.
func printFlags(out io.Writer, flags *flag.FlagSet) {
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
