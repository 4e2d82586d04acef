//go:build linux || darwin

// Command check checks your own chat server against one stage of the workshop: it starts your
// server, connects clients to it, and runs the checks that test our own stages:
//
//	go run ./harness/cmd/check -stage 5 -- python3 my_server.py {port}
//	go run ./harness/cmd/check -stage 3 -- ./server            # listens on 5555
//	go run ./harness/cmd/check -stage 5 -- go run ./stage5-select -addr {addr}
//
// Exit status: 0 when every required check of the stage passed, 1 when one failed, 2 when the
// checks could not run (bad flags, a command that does not start, a port that never opens).
// Under go run, 2 reaches the shell as 1, as any failure of the go command does.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

const usage = `usage: check -stage N [-v] [-pipe] [-wait DURATION] -- COMMAND [ARG...]

Checks your own chat server against one stage of the workshop. The tester
starts your server with COMMAND, connects clients to it, and says for each
check whether your server passed. The checks are the same ones that test this
workshop's own servers.

COMMAND is how you start your server. Put {port} or {addr} in it where your
server takes the port to listen on: the tester replaces them with a free port
or with 127.0.0.1:PORT, a new one for each check, and sets PORT in the
environment too. A command with neither must listen on port 5555.

Your server's output is shown beside the clients'. It goes to a terminal of
its own, so that each line comes out as soon as it is printed (-pipe gives it
a pipe instead).

Exit status: 0 when every required check passed, 1 when one failed, 2 when the
checks could not run. Under go run, 2 reaches the shell as 1 (go run reports any
failure as 1): a script that needs the difference runs go build first.

Stages:
`

// shortUsage is what a command line that misses something gets: the usage line and an
// example, the two things a newcomer otherwise learns by trial.
const shortUsage = `usage: check -stage N [-v] [-pipe] [-wait DURATION] -- COMMAND [ARG...]
example: go run ./harness/cmd/check -stage 4 -- python3 my_server.py {port}
(check -h says more)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("check", flag.ContinueOnError)
	flags.SetOutput(stderr)
	stage := flags.Int("stage", 0, "the stage to check, 1 to 7")
	verbose := flags.Bool("v", false, "show the transcript of passing checks too")
	pipe := flags.Bool("pipe", false, "give your server a pipe for its output, not a terminal")
	wait := flags.Duration("wait", tester.DefaultWait, "how long your server may take to start listening")
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		for n := 1; n <= 8; n++ {
			fmt.Fprintf(stderr, "  %d  %s\n", n, tester.StageTitles[n])
		}
		fmt.Fprintln(stderr, "\nFlags:")
		flags.PrintDefaults()
		fmt.Fprintln(stderr, "\nExample:\n  go run ./harness/cmd/check -stage 4 -- python3 my_server.py {port}")
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	command := flags.Args()
	switch {
	case len(args) == 0:
		// A newcomer's first try: the usage line and an example say more than any one error.
		fmt.Fprint(stderr, shortUsage)
		return 2
	case *stage == 8 || *stage == 9:
		fmt.Fprintf(stderr, "check: stage %d has no checks; stages 1 to 7 have\n"+
			"What it adds, a room across many servers, cannot be seen from one server's\n"+
			"clients; stage 7's checks judge each of its servers.\n", *stage)
		return 2
	case *stage == 0:
		fmt.Fprintf(stderr, "check: which stage? -stage 1 to 7 (-h lists them)\n%s", shortUsage)
		return 2
	case *stage < 1 || *stage > 7:
		fmt.Fprintf(stderr, "check: stage %d has no checks; stages 1 to 7 have (-h lists them)\n%s", *stage, shortUsage)
		return 2
	case len(command) == 0:
		fmt.Fprintf(stderr, "check: no server command: put it after --\n%s", shortUsage)
		return 2
	}

	program := &tester.Program{Args: command, Pipe: *pipe}
	if *wait != tester.DefaultWait {
		program.Ready = *wait
	}
	fmt.Fprintf(stdout, "Stage %d: %s\n", *stage, tester.StageTitles[*stage])
	fmt.Fprint(stdout, tester.Wrap("Your server: "+tester.ShellWords(command), "", "  ", tester.ReportWidth))
	if program.FixedPort() {
		if tester.PortTaken(tester.DefaultPort) {
			fmt.Fprintf(stderr, "check: port %d is already taken\n"+
				"Stop whatever listens there, or give your server a port with {port} or {addr}.\n", tester.DefaultPort)
			return 2
		}
		fmt.Fprintf(stdout, "Your command names no {port} or {addr}: your server is expected on port %d.\n", tester.DefaultPort)
	} else {
		fmt.Fprintln(stdout, "Each check starts it on a free port, in place of {port} or {addr}.")
	}
	fmt.Fprintln(stdout)

	// Ctrl-C reaches the tester only (the server has its own process group): stop the
	// server's whole group before leaving.
	cli.OnSignal(func(os.Signal) {
		fmt.Fprintln(stderr, "\ncheck: interrupted; stopping your server")
		if program.StopForGood() {
			fmt.Fprintf(stderr, "check: your server did not stop within %v of SIGTERM: killed it\n", tester.StopGrace)
		}
		os.Exit(2)
	})

	colour := os.Getenv("NO_COLOR") == "" && isTerminal(stdout)
	var failed []string
	required := 0
	reporter := &tester.Reporter{Verbose: *verbose, Colour: colour}
	err := tester.CheckStage(program, *stage, func(res *tester.Result) {
		fmt.Fprint(stdout, reporter.Report(res))
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
		fmt.Fprint(stdout, tester.Wrap(fmt.Sprintf("Stage %d: %d of %d required checks failed (%s).", *stage, len(failed), required, strings.Join(failed, ", ")), "", "  ", tester.ReportWidth))
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
