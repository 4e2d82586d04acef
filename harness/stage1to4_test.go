package harness

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// articlePieces is what stage 1 prints for the article's two messages sent with no delimiter,
// "Hello, world" and "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", until the
// client leaves: 10 bytes at a time, cut and run together.
var articlePieces = []string{
	"Server: received from client: Hello, wor",
	"Server: received from client: ldLorem ip",
	"Server: received from client: sum dolor ",
	"Server: received from client: sit amet, ",
	"Server: received from client: consectetu",
	"Server: received from client: r adipisci",
}

// Stage 1 reads its one client in pieces of exactly 10 bytes, whatever the messages were: the
// check "pieces" that the check command runs too. Ours promises more than the check asks: the
// last 8 bytes wait for 2 more, as Nim's recv(10) does, until the client leaves.
func TestStage1TenBytePieces(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 1, "pieces", "stage1-blocking")
	require.Equal(t, append([]string{"Server: client connected"}, articlePieces...), output(res)[:len(articlePieces)+1])
	require.Equal(t, "after close", res.Notes["last piece"])
	require.Contains(t, res.Output, "Server: received from client: ng elit.")
}

func TestStage1ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage1-blocking")
}

// checkListenErrors checks that the server in pkg explains, in one line on stderr, why it
// cannot listen (a port already taken, with a hint; an address that is not host:port), and
// exits with 1.
func checkListenErrors(t *testing.T, pkg string) {
	t.Helper()
	first := StartServer(t, pkg)
	busy := Start(t, Binary(t, pkg), nil, "-addr", first.Addr)
	require.Equal(t, 1, busy.WaitExit(t, Deadline))
	// The commonest cause is a server of an earlier stage still running: the line says so.
	require.Equal(t, pkg+": cannot listen on "+first.Addr+": address already in use"+
		fmt.Sprintf("\n(is another server still running? try -addr 127.0.0.1:%d)\n", first.Port+1), busy.Stderr())
	require.Empty(t, busy.Lines())

	malformed := Start(t, Binary(t, pkg), nil, "-addr", "127.0.0.1")
	require.Equal(t, 1, malformed.WaitExit(t, Deadline))
	require.Equal(t, pkg+": cannot listen on 127.0.0.1: missing port in address\n", malformed.Stderr())
	require.Empty(t, malformed.Lines())
}

// Stage 2 reads whole lines, ended by "\n" or "\r\n": the check "lines".
func TestStage2WholeLines(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 2, "lines", "stage2-recvline")
	want := append([]string{"Server: client connected"}, received(
		"Hello, world", "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "one", "two")...)
	require.Equal(t, want, output(res)[:len(want)])
}

// An empty line is a message too; an unfinished line waits for its end, and is printed as it
// is when the client leaves (stage 2's own promises, beyond the check).
func TestStage2EmptyAndUnfinishedLines(t *testing.T) {
	t.Parallel()
	s := StartServer(t, "stage2-recvline")
	client := Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))
	client.Send("\r\n\nafter two empty lines\r\nno newline at the end")
	s.ExpectLines(t, received("", "", "after two empty lines")...)
	s.ExpectNoLine(t, 300*time.Millisecond)
	client.Close()
	require.Equal(t, "Server: received from client: no newline at the end", s.NextLine(t))
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	require.Equal(t, 0, s.WaitExit(t, Deadline))
}

// A second client connects, because the kernel queues it, but it is never read from: the
// server is stuck serving the first one. The check command reports this as an observation.
func TestStage2SecondClientIsNeverServed(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 2, "second-client", "stage2-recvline")
	require.Equal(t, "no", res.Notes["second client served"])
	require.Equal(t, []string{"Server: client connected", "Server: received from client: Foo"}, output(res)[:2])
	require.NotContains(t, res.Output, "Server: received from client: Hola, mundo")
}

// Restarting on the same port at once works thanks to SO_REUSEADDR (the check "restart"), and
// fails without it, which the check must say. The later stages keep stage 2's -reuseaddr (the
// check speaks stage 2's protocol, so stage 7, which wants a name first, is left out).
func TestStage2ReuseAddr(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"stage2-recvline", "stage3-nonblocking", "stage4-broadcast", stage5, stage6} {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			// On a fresh port, the server listens fine without the option.
			fresh := StartServer(t, pkg, "-reuseaddr=false")
			fresh.Kill()

			runCheck(t, 2, "restart", pkg)
			res := failsCheck(t, ourServer(t, pkg, "-reuseaddr=false"), 2, "restart",
				"only a socket with SO_REUSEADDR set before bind may take its port")
			require.Contains(t, res.Output, pkg+": cannot listen on 127.0.0.1:"+res.Notes["port"]+
				": address already in use")
			require.Contains(t, res.Output, "(a connection of the last run may still be in TIME_WAIT: see -reuseaddr)")
		})
	}
}

func TestStage2ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage2-recvline")
}

// Stage 3 serves many clients from one loop, and hears every complete line from each of them,
// also after one of them leaves: the checks "clients" and "leave".
func TestStage3ManyClients(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 3, "clients", "stage3-nonblocking")
	want := []string{"Server: client connected", "Server: client connected", "Server: client connected"}
	want = append(want, received("Hello", "Hola", "Foo")...)
	require.Equal(t, want, output(res)[:len(want)])

	res = runCheck(t, 3, "leave", "stage3-nonblocking")
	want = append(want, "Server: client disconnected")
	want = append(want, received("Bar", "Baz")...)
	require.Equal(t, want, output(res)[:len(want)], "one disconnected line, and no empty received line before it")
	runCheck(t, 3, "reset", "stage3-nonblocking")
}

// Two lines in one write come out as two lines; half a line waits for the rest (beyond what
// the checks ask of a stage 3).
func TestStage3Framing(t *testing.T) {
	t.Parallel()
	s := StartServer(t, "stage3-nonblocking")
	clients := s.DialClients(t, 1)
	clients[0].Send("one\r\ntwo\r\nthr")
	s.ExpectLines(t, received("one", "two")...)
	s.ExpectNoLine(t, 300*time.Millisecond)
	clients[0].Send("ee\r\n")
	require.Equal(t, "Server: received from client: three", s.NextLine(t))
}

// With nobody connecting and nobody talking, the polling loop still keeps a core busy.
func TestStage3BurnsCPUWhileIdle(t *testing.T) {
	checkBurnsCPU(t, 3, "stage3-nonblocking")
}

func TestStage3ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage3-nonblocking")
}

// checkBurnsCPU runs the observation "idle-cpu" against the server in pkg and requires it to
// have seen at least half a core used, with one client connected and silent: the server asks
// its sockets for news over and over instead of sleeping. Half, not all of it, because the
// machine that runs the tests may be busy; and if another process hogs the cores, the
// measurement is taken a second time before the test fails.
func checkBurnsCPU(t *testing.T, stage int, pkg string) {
	t.Helper()
	if !CPUSupported {
		t.Skip("CPU use is not measured on this system")
	}
	use := 0.0
	for try := 1; try <= 2 && use < 0.5; try++ {
		res := runCheck(t, stage, "idle-cpu", pkg)
		use = min(res.Values["cpu"], res.Values["cpu alone"])
		t.Logf("try %d: %.0f%% of a core with one client, %.0f%% with none", try, res.Values["cpu"]*100, res.Values["cpu alone"]*100)
	}
	require.GreaterOrEqual(t, use, 0.5, "a polling server should spin while idle, with a client or none, but it used %.0f%% of a core", use*100)
	requireCPUPicture(t, pkg, use) // and the picture of its CPU in its README says so too (pictures_test.go)
}

// The observation of idle CPU measures with no client too: the article's stage 3 waits up to
// 1 ms for each client's line, which hides its busy loop while someone is connected, and
// burns a core with nobody connected. A server like it must not be told that it "already
// sleeps". Not parallel: it measures a CPU burning.
func TestCheckIdleCPUWithNoClient(t *testing.T) {
	if !CPUSupported {
		t.Skip("CPU use is not measured on this system")
	}
	python := needPython(t)
	root := RootDir(t)
	program := &tester.Program{Args: []string{python, filepath.Join(root, "harness/testdata/recvline-timeout/server.py"), "{port}"}}
	var res *tester.Result
	for try := 1; try <= 2; try++ { // a busy machine may starve the loop once
		res = tester.RunCheck(program, 3, findCheck(t, 3, "idle-cpu"))
		require.True(t, res.Passed, "%s", res.Report(true, false))
		t.Logf("try %d: %.0f%% of a core alone, %.0f%% with a client", try, res.Values["cpu alone"]*100, res.Values["cpu"]*100)
		if res.Values["cpu alone"] >= 0.5 {
			break
		}
	}
	require.GreaterOrEqual(t, res.Values["cpu alone"], 0.5, "%s", res.Report(true, false))
	require.NotContains(t, res.Observation, "already sleeps", "%s", res.Report(true, false))
	require.Contains(t, res.Observation, "burns a core while nobody is connected", "%s", res.Report(true, false))
}

// Stage 4 sends every line to every other client, as a line ending in "\r\n", and not back to
// its sender, also after a client leaves or vanishes with a reset, long lines whole, and goes
// on after bytes that are not text: the checks "broadcast", "leave", "reset", "whole-lines"
// and "not-text".
func TestStage4Broadcast(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 4, "broadcast", "stage4-broadcast")
	require.Equal(t, received("Hello", "Hola"), logOnly(res.Output, received("Hello", "Hola")))
	require.Equal(t, `\r\n`, res.Notes["ending"])
	res = runCheck(t, 4, "leave", "stage4-broadcast")
	require.Contains(t, res.Output, "Server: client disconnected")
	for _, check := range []string{"reset", "whole-lines", "not-text"} {
		runCheck(t, 4, check, "stage4-broadcast")
	}
}

// Broadcasting changed nothing about the loop: it still spins while idle.
func TestStage4BurnsCPUWhileIdle(t *testing.T) {
	checkBurnsCPU(t, 4, "stage4-broadcast")
}

func TestStage4ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage4-broadcast")
}
