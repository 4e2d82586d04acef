//go:build linux || darwin

package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// The checks of harness/check*.go prove our own stages here, exactly as the check command
// runs them against anybody's server; the tests below also prove that the checks fail, with
// the right hint, on servers that make the mistakes people make.

// findCheck returns the check of stage called name.
func findCheck(t testing.TB, stage int, name string) tester.Check {
	t.Helper()
	for _, c := range tester.StageChecks(stage) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("stage %d has no check %q", stage, name)
	return tester.Check{}
}

// ourServer is one of our programs as the checks start it: on the address they choose.
func ourServer(t testing.TB, pkg string, args ...string) *tester.Program {
	t.Helper()
	return &tester.Program{Args: append([]string{Binary(t, pkg), "-addr", "{addr}"}, args...)}
}

// runCheck runs the check called name of stage against our program pkg, started with args
// besides -addr, and fails the test with the check's report unless it passes.
func runCheck(t testing.TB, stage int, name, pkg string, args ...string) *tester.Result {
	t.Helper()
	res := tester.RunCheck(ourServer(t, pkg, args...), stage, findCheck(t, stage, name))
	if res.Err != nil || !res.Passed {
		t.Fatalf("check %q of stage %d failed against %s:\n%s", name, stage, pkg, res.Report(false, false))
	}
	if res.Observation != "" {
		t.Log(res.Observation)
	}
	return res
}

// failsCheck runs the check and requires it to fail with a hint that contains hint.
func failsCheck(t testing.TB, program *tester.Program, stage int, name, hint string) *tester.Result {
	t.Helper()
	res := tester.RunCheck(program, stage, findCheck(t, stage, name))
	require.NoError(t, res.Err)
	require.False(t, res.Passed, "check %q of stage %d should have failed:\n%s", name, stage, res.Report(true, false))
	require.Contains(t, res.Hint, hint, "check %q of stage %d:\n%s", name, stage, res.Report(false, false))
	return res
}

// output is what the server printed without its first line (the started line names a port).
func output(res *tester.Result) []string {
	if len(res.Output) == 0 {
		return nil
	}
	return res.Output[1:]
}

// received is the log line of one of our stages for message.
func received(messages ...string) []string {
	lines := make([]string, len(messages))
	for i, m := range messages {
		lines[i] = "Server: received from client: " + m
	}
	return lines
}

// logOnly keeps the lines of lines that are in want, in their order.
func logOnly(lines []string, want []string) []string {
	var kept []string
	for _, line := range lines {
		for _, w := range want {
			if line == w {
				kept = append(kept, line)
				break
			}
		}
	}
	return kept
}

// broken is the small relay of testdata/broken with one mistake.
func broken(t testing.TB, mistake string) *tester.Program {
	t.Helper()
	return ourServer(t, "harness/testdata/broken", "-mistake", mistake)
}

// Each mistake fails the check that names its lesson, with that lesson as its hint, and
// passes the others of its stage: a check that blamed the wrong thing would teach the wrong
// lesson. The relay without a mistake passes every check of stage 5.
func TestCheckBrokenServers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mistake string
		stage   int
		fails   []string // every required check that fails, the first one with hint
		hint    string
	}{
		{"none", 5, nil, ""},
		{"echo", 4, []string{"broadcast"}, "the line came back to its sender: skip the sender when you broadcast"},
		{"zero-timeout", 5, []string{"idle-cpu"}, "are you waiting with a zero timeout?"},
		{"first-line", 5, []string{"framing", "catch-up", "stalled"}, "only the first of two lines sent in one write came through"},
		{"drop-unsent", 5, []string{"catch-up"}, "when a write takes only part of what you give it (or none: EAGAIN), keep the rest"},
		{"blocking-writes", 5, []string{"catch-up", "stalled"}, "a client that does not read held up the others"},
		{"keep-watching", 5, []string{"catch-up"}, "stop asking about a writable socket once its output is all sent"},
		{"no-reuseaddr", 2, []string{"restart"}, "SO_REUSEADDR"},
	}
	// The servers are checked four at a time: most of a check is waiting (for a CPU window, or
	// for a line that a broken server never sends), and each server has its own port and
	// process group, and is measured alone.
	results := make([][]*tester.Result, len(cases))
	running := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, tc := range cases {
		program := broken(t, tc.mistake)
		wg.Add(1)
		go func() {
			defer wg.Done()
			running <- struct{}{}
			defer func() { <-running }()
			for _, check := range tester.StageChecks(tc.stage) {
				if check.Required {
					results[i] = append(results[i], tester.RunCheck(program, tc.stage, check))
				}
			}
		}()
	}
	wg.Wait()
	for i, tc := range cases {
		t.Run(tc.mistake, func(t *testing.T) {
			if (tc.mistake == "zero-timeout" || tc.mistake == "keep-watching") && !CPUSupported {
				t.Skip("CPU use is not measured on this system")
			}
			var failed []string
			for _, res := range results[i] {
				require.NoError(t, res.Err)
				if res.Passed {
					continue
				}
				if len(failed) == 0 {
					require.Contains(t, res.Hint, tc.hint, "%s", res.Report(false, false))
				}
				if name := res.Check.Name; (name == "catch-up" || name == "stalled") && !strings.Contains(res.Hint, "of a core") {
					// A line lost: the one that went wrong, not the last that came right.
					require.Regexp(t, `due next: line \d{7}`, res.Report(false, false))
				}
				failed = append(failed, res.Check.Name)
			}
			require.Equal(t, tc.fails, failed)
		})
	}
}

// checkCommand runs the built check command with args and returns its output (standard
// output and error together) and exit status.
func checkCommand(t *testing.T, args ...string) (string, int) {
	t.Helper()
	p := Start(t, Binary(t, "harness/cmd/check"), nil, args...)
	code := p.WaitExit(t, 2*Deadline*3)
	out := p.Stderr()
	if lines := p.Lines(); len(lines) > 0 {
		out = strings.Join(lines, "\n") + "\n" + out
	}
	return out, code
}

// normaliseCheck makes the check command's output independent of the run: ports, paths of
// built programs and measured figures. The server's own lines are dropped, since where they
// fall among the clients' lines depends on timing.
func normaliseCheck(out string, paths ...string) string {
	out = tester.Rewrap(out, func(out string) string {
		for i, path := range paths {
			out = strings.ReplaceAll(out, path, "BIN"+strings.Repeat("'", i))
		}
		return out
	})
	out = regexp.MustCompile(`(?m)^    \[your server\] .*\n`).ReplaceAllString(out, "")
	out = regexp.MustCompile(`port \d+`).ReplaceAllString(out, "port PORT")
	out = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(out, "127.0.0.1:PORT")
	out = regexp.MustCompile(`\d+%`).ReplaceAllString(out, "N%")
	return out
}

// compareGolden compares got with testdata/check/name, or rewrites the file under -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "check", name)
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("the check command's output differs from %s (-want +got); run "+
			"`go test ./harness -run TestCheckCommand -update` if the change is intended:\n%s", path, diff)
	}
}

// The command itself, run as a person runs it: a passing stage and a failing one, their
// output compared with expected files, and their exit status.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	t.Run("pass", func(t *testing.T) {
		bin := Binary(t, "stage2-recvline")
		out, code := checkCommand(t, "-stage", "2", "--", bin, "-addr", "{addr}")
		require.Equal(t, 0, code, out)
		compareGolden(t, "pass-stage2.txt", normaliseCheck(out, bin))
	})
	t.Run("fail", func(t *testing.T) {
		bin := Binary(t, "harness/testdata/broken")
		out, code := checkCommand(t, "-stage", "4", "--", bin, "-addr", "{addr}", "-mistake", "echo")
		require.Equal(t, 1, code, out)
		require.Contains(t, out, "\n    [your server] Server: received from client: Hello\n")
		compareGolden(t, "fail-stage4-echo.txt", normaliseCheck(out, bin))
	})
	t.Run("usage", func(t *testing.T) {
		out, code := checkCommand(t, "-h")
		require.Equal(t, 0, code)
		require.True(t, strings.HasPrefix(out, "usage: check -stage N"), "%q", out)
		require.True(t, strings.HasSuffix(out, "\nExample:\n  go run ./harness/cmd/check -stage 4 -- python3 my_server.py {port}\n"), "%q", out)
		for _, line := range strings.Split(out, "\n") {
			require.LessOrEqual(t, columns(line), 80, "too wide for 80 columns: %q", line)
		}
		for _, args := range [][]string{{"-stage", "1"}, {"-nope"}} {
			_, code := checkCommand(t, args...)
			require.Equal(t, 2, code, "%q", args)
		}
		// A command line that misses something shows the usage line and an example: a
		// newcomer who types `check` alone learns about -- and the command from it.
		const short = "usage: check -stage N [-v] [-pipe] [-wait DURATION] -- COMMAND [ARG...]\n" +
			"example: go run ./harness/cmd/check -stage 4 -- python3 my_server.py {port}\n" +
			"(check -h says more)\n"
		for _, tc := range []struct {
			args  []string
			first string
		}{
			{nil, ""},
			{[]string{"-stage", "3"}, "check: no server command: put it after --\n"},
			{[]string{"--", "./server"}, "check: which stage? -stage 1 to 7 (-h lists them)\n"},
			{[]string{"-stage", "10", "--", "./server"}, "check: stage 10 has no checks; stages 1 to 7 have (-h lists them)\n"},
		} {
			out, code := checkCommand(t, tc.args...)
			require.Equal(t, 2, code, "%q", tc.args)
			require.Equal(t, tc.first+short, out, "%q", tc.args)
		}
		// Stages 8 and 9 are ours, and say why the tester has nothing of its own for them.
		for _, stage := range []string{"8", "9"} {
			out, code := checkCommand(t, "-stage", stage, "--", "./server")
			require.Equal(t, 2, code, "stage %s", stage)
			require.Equal(t, "check: stage "+stage+" has no checks; stages 1 to 7 have\n"+
				"What it adds, a room across many servers, cannot be seen from one server's\n"+
				"clients; stage 7's checks judge each of its servers.\n", out, "stage %s", stage)
		}
	})
	t.Run("port-5555-taken", func(t *testing.T) {
		port5555.Lock()
		defer port5555.Unlock()
		if !tester.PortTaken(tester.DefaultPort) {
			listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", tester.DefaultPort))
			require.NoError(t, err)
			defer listener.Close()
		}
		out, code := checkCommand(t, "-stage", "3", "--", Binary(t, "stage3-nonblocking"))
		require.Equal(t, 2, code, out)
		require.Equal(t, "check: port 5555 is already taken\n"+
			"Stop whatever listens there, or give your server a port with {port} or {addr}.\n", out[strings.Index(out, "check:"):])
	})
	t.Run("does-not-start", func(t *testing.T) {
		out, code := checkCommand(t, "-stage", "1", "--", "/nonexistent/server", "{port}")
		require.Equal(t, 2, code, out)
		require.Contains(t, out, "could not run: cannot start your server")
	})
}

// A server behind a shell script that waits for it: the shell and the server are one process
// group, measured together and stopped together.
func TestCheckShellScript(t *testing.T) {
	t.Parallel()
	bin := Binary(t, "stage5-select")
	program := &tester.Program{Args: []string{"sh", "-c", `echo "starting on $PORT"; "$0" -addr "127.0.0.1:$1"; echo never`, bin, "{port}"}}
	for _, check := range []string{"broadcast", "idle-cpu"} {
		res := tester.RunCheck(program, 5, findCheck(t, 5, check))
		require.True(t, res.Passed, "%s", res.Report(true, false))
		require.Regexp(t, `^starting on \d+$`, res.Output[0])
		require.False(t, program.GroupAlive(), "the script's process group is still running")
		require.NotContains(t, res.Output, "never")
	}
}

// port5555 is held by the tests that use port 5555, the article's, one at a time.
var port5555 sync.Mutex

// A server that takes no arguments and listens on 5555, as the article's do.
func TestCheckFixedPort(t *testing.T) {
	t.Parallel()
	port5555.Lock()
	defer port5555.Unlock()
	if tester.PortTaken(tester.DefaultPort) {
		t.Skipf("port %d is taken on this machine (a server of yours, perhaps, still running): "+
			"this test starts a server that listens there, as the article's do; stop the other and run it again", tester.DefaultPort)
	}
	program := &tester.Program{Args: []string{Binary(t, "stage3-nonblocking")}}
	require.True(t, program.FixedPort())
	for _, check := range tester.StageChecks(3) {
		if check.Required {
			res := tester.RunCheck(program, 3, check)
			require.True(t, res.Passed, "%s", res.Report(true, false))
		}
	}
}

// Ctrl-C reaches the tester, not the server, which has a process group of its own: the
// tester must stop the server's whole group before it leaves. The group here holds a
// "sleep 31.25" beside the server, which nothing else would stop (a Go server dies of SIGPIPE
// once it prints to the tester's closed pipe, which would hide the mistake).
func TestCheckInterrupted(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("looks for the server's processes in /proc")
	}
	const sleeper = "sleep\x0031.25\x00"
	sleeping := func() bool {
		commands, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, path := range commands {
			if data, _ := os.ReadFile(path); string(data) == sleeper {
				return true
			}
		}
		return false
	}
	require.False(t, sleeping(), "a sleep 31.25 is already running")
	bin := Binary(t, "stage5-select")
	p := Start(t, Binary(t, "harness/cmd/check"), nil, "-stage", "5", "--",
		"sh", "-c", `sleep 31.25 & exec "$0" -addr "127.0.0.1:$1"`, bin, "{port}")
	p.WaitLine(t, "✓ broadcast: every line to every other client, not its sender")
	for deadline := time.Now().Add(Deadline); !sleeping(); time.Sleep(10 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the second check's server did not start")
	}
	p.Signal(t, os.Interrupt)
	require.Equal(t, 2, p.WaitExit(t, Deadline))
	require.Contains(t, p.Stderr(), "check: interrupted; stopping your server")
	// A killed process may take a moment to leave /proc on a busy machine; one the tester
	// left behind would sleep for half a minute.
	for deadline := time.Now().Add(2 * time.Second); sleeping(); time.Sleep(10 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the server's process group is still running")
	}
}

// PortTaken finds a listening port taken by trying to listen there itself: a server that
// runs on the port sees no client come and go.
func TestCheckPortTakenWithoutConnecting(t *testing.T) {
	t.Parallel()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer listener.Close()
	port := listener.Addr().(*net.TCPAddr).Port
	require.True(t, tester.PortTaken(port))
	listener.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	conn, err := listener.Accept()
	if err == nil {
		conn.Close()
		t.Fatal("PortTaken connected to the port")
	}
	free, err := tester.FreePort()
	require.NoError(t, err)
	require.False(t, tester.PortTaken(free))
}

// A server whose port never opens: the message says how long the tester waited, and names
// -wait when the wait was the default.
func TestCheckWait(t *testing.T) {
	t.Parallel()
	out, code := checkCommand(t, "-stage", "4", "-wait", "1s", "--", "sleep", "30", "{port}")
	require.Equal(t, 2, code, out)
	out = strings.Join(strings.Fields(out), " ")
	require.Contains(t, out, "did not accept a connection within 1 s of the start")
	require.NotContains(t, out, "-wait 2m", "a wait that was asked for is not the default")
	message := (&tester.ErrNotReady{Port: 4242, Waited: 30 * time.Second, Default: true}).Error()
	require.Equal(t, "port 4242 did not accept a connection within 30 s of the start (the default; "+
		"a server that starts slowly can be given longer with -wait, as in -wait 2m)", message)
}

// The tester's clients leave in good order (they read what is left, then close), so that a
// server never logs a reset that the tester caused; only Reset ends a connection with one.
func TestCheckClientsLeaveInGoodOrder(t *testing.T) {
	t.Parallel()
	needPython(t)
	// A server that sends each client lines it never reads, then says how the client left.
	const script = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"never read\n" * 100000)
        while c.recv(4096):
            pass
        print("left: end of stream", flush=True)
    except ConnectionResetError:
        print("left: reset", flush=True)
    c.close()
`
	program := &tester.Program{Args: []string{"python3", "-c", script, "{port}"}}
	var ways []string
	res := tester.RunCheck(program, 2, tester.Check{Name: "goodbye", Required: true, Run: func(r *tester.Run) {
		for _, leave := range []func(*tester.Client){(*tester.Client).Close, (*tester.Client).Reset} {
			c := r.Client()
			c.ReadLine(Deadline) // the rest is left unread
			leave(c)
			line, _ := r.WaitLog(Deadline, func(line string) bool { return strings.HasPrefix(line, "left: ") })
			ways = append(ways, line)
		}
	}})
	require.True(t, res.Passed, "%s", res.Report(true, false))
	require.Equal(t, []string{"left: end of stream", "left: reset"}, ways, "%s", res.Report(true, false))
}

// A server's output goes to a terminal (where C's stdio, Nim and Python write each line as it
// is printed), or to a pipe with -pipe: the server itself can tell.
func TestCheckServerOutputOnTerminal(t *testing.T) {
	t.Parallel()
	needPython(t)
	const script = `
import os, socket, sys
print("stdout is a " + ("terminal" if os.isatty(1) else "pipe"))
print("stderr is a " + ("terminal" if os.isatty(2) else "pipe"), file=sys.stderr)
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    s.accept()
`
	for _, pipe := range []bool{false, true} {
		program := &tester.Program{Args: []string{"python3", "-c", script, "{port}"}, Pipe: pipe}
		res := tester.RunCheck(program, 1, tester.Check{Name: "output", Required: true, Run: func(r *tester.Run) {}})
		require.True(t, res.Passed, "%s", res.Report(true, false))
		want := "terminal"
		if pipe {
			want = "pipe"
		}
		require.ElementsMatch(t, []string{"stdout is a " + want, "stderr is a " + want}, res.Output)
	}
}

// A server that ends in the middle of a check is reported as that, with its exit status or
// signal and its last lines whole, not as a line that never came.
func TestCheckServerEnds(t *testing.T) {
	t.Parallel()
	needPython(t)
	const script = `
import os, signal, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
c, _ = s.accept()
c.recv(100)
print("Traceback (most recent call last):")
print('  File "server.py", line 42, in relay ' + "x" * 200)
print("ValueError: the last line of a long traceback")
sys.stdout.flush()
if sys.argv[2] == "exit":
    sys.exit(3)
os.kill(os.getpid(), signal.SIGSEGV)
`
	for _, end := range []struct{ how, status string }{{"exit", "exit status 3"}, {"signal", "signal: segmentation fault"}} {
		program := &tester.Program{Args: []string{"python3", "-c", script, "{port}", end.how}}
		res := tester.RunCheck(program, 4, tester.Check{Name: "ends", Required: true, Run: func(r *tester.Run) {
			c := r.Client()
			c.Send("Hello\n")
			c.ReadLine(Deadline)
			r.Fail("client-1 to receive a line", "relay each line")
		}})
		require.False(t, res.Passed)
		require.Equal(t, end.status, res.Ended, "%s", res.Report(true, false))
		require.Contains(t, res.Hint, "your server ended ("+end.status+") in the middle of the check")
		require.Equal(t, "ValueError: the last line of a long traceback", res.Tail[len(res.Tail)-1])
		report := res.Report(false, false)
		require.Contains(t, report, "\n    | "+`  File "server.py", line 42, in relay xx`, report)
		require.Contains(t, report, "xxx (238 bytes)\n", report)
		// Its last lines are shown once, after the transcript, where the hint says they are.
		require.NotContains(t, report, "[your server] ValueError", report)
		require.Contains(t, report, "lines are above", report)
		require.Less(t, strings.Index(report, "your server's last"), strings.Index(report, "hint:"), report)
	}
}

// Every line the check command prints fits an 80-column terminal, when checks fail too: a
// server's long lines are cut in the middle with their length, a traceback is shown once,
// and the summary wraps. Real checks, real failures: a relay of reads at stage 5 (lines of
// 6000 bytes, floods) in the house style of chapter 8 of The Go Programming Language, and
// with -v a server that prints a 1530-byte line and dies with a traceback at stage 1.
func TestCheckOutputFits80Columns(t *testing.T) {
	t.Parallel()
	needPython(t)
	const script = `
import socket, sys
print("a" * 1530, flush=True)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
c, _ = s.accept()
raise ValueError("a traceback line that goes on and on " + "y" * 120)
`
	raw := Binary(t, "harness/testdata/corpus/go-gopl-raw")
	for _, args := range [][]string{
		{"-stage", "5", "--", raw, "{port}"},
		{"-stage", "1", "-v", "--", "python3", "-c", script, "{port}"},
	} {
		out, code := checkCommand(t, args...)
		require.Equal(t, 1, code, out)
		for _, line := range strings.Split(out, "\n") {
			if utf8.RuneCountInString(line) > 80 {
				t.Errorf("%d columns: %s", utf8.RuneCountInString(line), line)
			}
		}
		if args[1] == "1" {
			require.Contains(t, out, "aaaa (1530 bytes)\n", out)
			require.Equal(t, 1, strings.Count(out, "ValueError: a traceback line"), out)
		} else {
			require.Contains(t, out, "\nStage 5: 4 of 9 required checks failed (whole-lines, framing, catch-up,\n  stalled).\n", out)
			// Its greeting and the address before each line are told once, as house style.
			require.Equal(t, 1, strings.Count(out, "house style: "), out)
			require.Contains(t, out, `("You are 127.0.0.1:`, out)
		}
	}
}

// Every check says what the lesson (or Budget Chat's statement) requires of a server, and
// every observation what is only how our stages do it: a required check fails only on the
// first, and the README's table says the same.
func TestCheckEveryCheckSaysWhy(t *testing.T) {
	t.Parallel()
	files, _ := readmeBlocks(t)
	var reference string // the tester's README, whose table names every check
	for _, f := range files {
		if strings.HasSuffix(f.path, filepath.Join("cmd", "check", "README.md")) {
			reference = f.text
		}
	}
	for stage := 1; stage <= 7; stage++ {
		for _, check := range tester.StageChecks(stage) {
			if check.Required {
				require.NotEmpty(t, check.Requires, "stage %d, %s: what does the lesson require?", stage, check.Name)
			} else {
				require.Empty(t, check.Requires, "stage %d, %s: an observation requires nothing", stage, check.Name)
				require.NotEmpty(t, check.Ours, "stage %d, %s: what does the observation report?", stage, check.Name)
			}
			require.Contains(t, reference, "`"+check.Name+"`", "the tester's README does not name %s", check.Name)
		}
	}
}

// A server whose output is held in a buffer (sed's, on a pipe) fails every check that reads
// its log, for one reason: the hint says it once and the later checks refer to it, and the
// observation that could not see what it looks for keeps its own mark, never ✗.
func TestCheckHintOnceObservationMark(t *testing.T) {
	t.Parallel()
	bin := Binary(t, "stage2-recvline")
	out, code := checkCommand(t, "-stage", "2", "-pipe", "--",
		"sh", "-c", `"$0" -addr "127.0.0.1:$1" 2>&1 | sed s/^//`, bin, "{port}")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "\n• second-client (observation): is a second client served?\n", out)
	require.NotContains(t, out, "✗ second-client", out)
	// Its lines come out when it ends, or never if SIGTERM ends sed first, a race that each
	// check may win or lose: "held in a buffer" and "printed nothing at all" are two hints,
	// each said once at most, and a later check for the same reason refers to the first.
	advice := strings.Count(out, "Write each line out as you print it")
	require.True(t, advice == 1 || advice == 2 && strings.Contains(out, "printed nothing at all"), out)
	require.Regexp(t, `hint: the same as for (lines|restart), above`, out)
}

// A server that cannot listen while nothing listens on its port (the article's stage 1
// listing, run right after another run left connections in TIME_WAIT) fails the lesson of
// stage 2, SO_REUSEADDR, with its hint: the checks did run, and what they found is the very
// failure the article shows. At stage 1, which does not teach it yet, they could not run.
func TestCheckBindFailureIsTheLesson(t *testing.T) {
	t.Parallel()
	inUse := []string{"sh", "-c", `echo "Error: unhandled exception: Address already in use [OSError]"; exit 1`, "{port}"}
	out, code := checkCommand(t, append([]string{"-stage", "2", "--"}, inUse...)...)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "✗ restart: ", out)
	require.Contains(t, strings.Join(strings.Fields(out), " "), "only a socket with SO_REUSEADDR set before bind may take it", out)
	require.NotContains(t, out, "could not run", out)

	out, code = checkCommand(t, append([]string{"-stage", "1", "--"}, inUse...)...)
	require.Equal(t, 2, code, out)
	require.Contains(t, out, "could not run", out)

	// Any other way of ending at the start is still a check that could not run.
	out, code = checkCommand(t, "-stage", "2", "--", "sh", "-c", `echo "SyntaxError: invalid syntax"; exit 1`, "{port}")
	require.Equal(t, 2, code, out)
}

// A server that ignores {port} and listens elsewhere is found out as soon as its listening
// sockets show it, not after the whole wait for its port (30 s by default).
func TestCheckIgnoredPortFoundEarly(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads the server's listening sockets in /proc")
	}
	bin := Binary(t, "stage5-select")
	start := time.Now()
	out, code := checkCommand(t, "-stage", "4", "--", "sh", "-c", `exec "$0" -addr 127.0.0.1:0`, bin, "{port}")
	require.Equal(t, 2, code, out)
	require.Less(t, time.Since(start), 10*time.Second, out)
	out = strings.Join(strings.Fields(out), " ")
	require.Regexp(t, `could not run: your server listens on port \d+, not on port \d+ that the tester gave it: does it ignore \{port\} or \{addr\}\?`, out)
}

// A server that prints nothing at all into the pipe of -pipe (C's printf, ended by SIGTERM
// before it wrote its buffer out) is told why its log may be empty.
func TestCheckSilentOnAPipe(t *testing.T) {
	t.Parallel()
	needPython(t)
	silent := `import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
time.sleep(60)`
	out, code := checkCommand(t, "-stage", "1", "-pipe", "--", "python3", "-c", silent, "{port}")
	require.Equal(t, 1, code, out)
	require.Contains(t, strings.Join(strings.Fields(out), " "), "hint: your server printed nothing at all, not even when it was stopped", out)
	out, code = checkCommand(t, "-stage", "1", "--", "python3", "-c", silent, "{port}")
	require.Equal(t, 1, code, out)
	require.NotContains(t, out, "printed nothing at all", "without -pipe the output is a terminal")
}
