package harness

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

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
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3")
	}
	root, err := Root()
	require.NoError(t, err)
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
