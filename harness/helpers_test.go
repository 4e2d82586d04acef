package harness

// What the tests of this package share about starting a program and reading it: they live in
// test files, so that the commands, which import the rest of the package, link no test
// framework.

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// RootDir is the module's root folder (Root), failing the test if there is none.
func RootDir(t testing.TB) string {
	t.Helper()
	root, err := Root()
	require.NoError(t, err)
	return root
}

// needFolder skips the test when the module has no folder pkg, in a checkout that lacks a
// stage.
func needFolder(t testing.TB, pkg string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(RootDir(t), pkg)); err != nil {
		t.Skipf("no %s in this checkout", pkg)
	}
}

// needPython returns the path of python3, whose small servers some tests start, and skips
// the test on a machine without it.
func needPython(t testing.TB) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this machine")
	}
	return python
}

// Binary builds the program in the module folder pkg (such as "stage5-select" or
// "clients/sender") once per test run and returns the path of the executable.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	path, err := BuildBinary(pkg)
	require.NoError(t, err)
	return path
}

// StartServer starts the program in pkg on 127.0.0.1:0 (unless args name an -addr of their
// own), waits for its "started" line and learns the port from it. The server is killed when
// the test ends.
func StartServer(t testing.TB, pkg string, args ...string) *Server {
	t.Helper()
	s, err := StartServerProcess(pkg, args...)
	if s != nil {
		t.Cleanup(s.Kill)
	}
	require.NoError(t, err)
	return s
}

// Start runs the executable bin with args, feeding it stdin (nil for none). The process is
// killed when the test ends.
func Start(t testing.TB, bin string, stdin io.Reader, args ...string) *Process {
	t.Helper()
	p, err := StartProcess(bin, stdin, args...)
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	return p
}

// NextLine returns the next line of standard output, failing the test if none comes within
// the Deadline.
func (p *Process) NextLine(t testing.TB) string {
	t.Helper()
	line, ok := p.output.Next(Deadline, nil)
	if !ok {
		t.Fatalf("no next output line within %v (ended: %v); lines so far: %q; stderr: %q",
			Deadline, p.Exited(), p.Lines(), p.Stderr())
	}
	return line
}

// ExpectLines reads the next len(want) lines of standard output and fails the test, with a
// diff, unless they are want.
func (p *Process) ExpectLines(t testing.TB, want ...string) {
	t.Helper()
	got := make([]string, 0, len(want))
	for range want {
		line, ok := p.output.Next(Deadline, nil)
		if !ok {
			break
		}
		got = append(got, line)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("output lines (-want +got):\n%s\nstderr: %q", diff, p.Stderr())
	}
}

// WaitLine skips output lines until one equals want, failing the test if none does within
// the Deadline. It returns the lines it skipped.
func (p *Process) WaitLine(t testing.TB, want string) []string {
	t.Helper()
	var skipped []string
	deadline := time.Now().Add(Deadline)
	for {
		line, ok := p.output.Next(time.Until(deadline), nil)
		if !ok {
			t.Fatalf("no output line %q within %v; lines so far: %q; stderr: %q",
				want, Deadline, p.Lines(), p.Stderr())
		}
		if line == want {
			return skipped
		}
		skipped = append(skipped, line)
	}
}

// ExpectNoLine proves that the program prints nothing more for d, which must be positive.
func (p *Process) ExpectNoLine(t testing.TB, d time.Duration) {
	t.Helper()
	if d <= 0 {
		t.Fatalf("ExpectNoLine(%v) proves nothing: a wait that is already over sees no line; give it a positive duration", d)
	}
	if line, ok := p.output.Next(d, nil); ok {
		t.Fatalf("expected no output for %v, got %q", d, line)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.running.Signal(sig))
}

// WaitExit waits up to timeout for the process to end and returns its exit status
// (128+N for a process killed by signal N).
func (p *Process) WaitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("process still running after %v; lines: %q; stderr: %q", timeout, p.Lines(), p.Stderr())
	}
	return p.exitCode
}

// CPUUse measures how much of one core the process uses over window (1.0 is a whole core),
// failing the test if it cannot.
func CPUUse(t testing.TB, p *Process, window time.Duration) float64 {
	t.Helper()
	use, err := MeasureCPU(p, window)
	require.NoError(t, err)
	return use
}
