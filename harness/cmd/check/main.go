//go:build linux || darwin

// Command check starts your own chat server and runs against it the same checks that prove
// this workshop's stages, stage by stage:
//
//	go run ./harness/cmd/check -stage 5 -- python3 my_server.py {port}
//	go run ./harness/cmd/check -stage 3 -- ./server            # listens on 5555
//	go run ./harness/cmd/check -stage 5 -- go run ./stage5-select -addr {addr}
//
// Exit status: 0 when every required check of the stage passed, 1 when one failed, 2 when the
// checks could not run (bad flags, a command that does not start, a port that never opens).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-chat-workshop/simple-chat-server/harness"
)

const usage = `usage: check -stage N [-v] -- COMMAND [ARG...]

check starts your chat server with COMMAND and runs against it this workshop's
checks of stage N, the same checks that prove our own stages.

In COMMAND, {port} and {addr} stand for a free port and for 127.0.0.1:PORT,
chosen afresh for each check; PORT is also set in the environment. A command
with neither is expected to listen on port 5555. Exit status: 0 when every
required check passed, 1 when one failed, 2 when the checks could not run.

Stages:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	stage := flags.Int("stage", 0, "the stage to check, 1 to 6")
	verbose := flags.Bool("v", false, "show the transcript of passing checks too")
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		for n := 1; n <= 6; n++ {
			fmt.Fprintf(stderr, "  %d  %s\n", n, harness.StageTitles[n])
		}
		fmt.Fprintln(stderr, "\nFlags:")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	command := flags.Args()
	switch {
	case *stage < 1 || *stage > 6:
		fmt.Fprintln(stderr, "check: -stage must be 1 to 6 (check -h lists them)")
		return 2
	case len(command) == 0:
		fmt.Fprintln(stderr, "check: no server command: put it after --, as in check -stage 5 -- ./server {port}")
		return 2
	}

	program := &harness.Program{Args: command}
	fmt.Fprintf(stdout, "Stage %d: %s\n", *stage, harness.StageTitles[*stage])
	fmt.Fprintf(stdout, "Your server: %s\n", harness.ShellWords(command))
	if program.FixedPort() {
		if harness.PortTaken(harness.DefaultPort) {
			fmt.Fprintf(stderr, "check: port %d is already taken: stop whatever listens there, or pass your server the port with {port} or {addr}\n", harness.DefaultPort)
			return 2
		}
		fmt.Fprintf(stdout, "Your command names no {port} or {addr}: your server is expected on port %d.\n", harness.DefaultPort)
	} else {
		fmt.Fprintln(stdout, "Each check starts it on a free port, in place of {port} or {addr}.")
	}
	fmt.Fprintln(stdout)

	// Ctrl-C reaches the tester only (the server has its own process group): stop the
	// server's whole group before leaving.
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-interrupted
		fmt.Fprintln(stderr, "\ncheck: interrupted; stopping your server")
		if program.Stop() {
			fmt.Fprintf(stderr, "check: your server did not stop within %v of SIGTERM: killed it\n", harness.StopGrace)
		}
		os.Exit(2)
	}()

	colour := os.Getenv("NO_COLOR") == "" && isTerminal(stdout)
	var failed []string
	required := 0
	err := harness.CheckStage(program, *stage, func(res *harness.CheckResult) {
		fmt.Fprint(stdout, res.Report(*verbose, colour))
		if res.Check.Required && res.Err == nil {
			required++
			if !res.Passed {
				failed = append(failed, res.Check.Name)
			}
		}
	})
	fmt.Fprintln(stdout)
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "Stage %d: could not run the checks.\n", *stage)
		return 2
	case len(failed) > 0:
		fmt.Fprintf(stdout, "Stage %d: %d of %d required checks failed (%s).\n", *stage, len(failed), required, strings.Join(failed, ", "))
		return 1
	}
	fmt.Fprintf(stdout, "Stage %d: all %d required checks passed.\n", *stage, required)
	return 0
}

// isTerminal reports whether w is a terminal, for colours.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0 && f.Name() != os.DevNull
}
