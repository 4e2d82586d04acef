// Package harness starts the workshop's real programs and talks to them over real sockets,
// so that every stage's lesson is checked by `go test ./...` instead of by a screenshot.
//
// Programs are built once per test run (never `go run`: the compiler's CPU would be counted,
// and a signal would reach the go tool instead of the server), servers listen on 127.0.0.1:0
// and the port is read from their "started" line, and every process a test starts is stopped
// by that test's cleanup, even when the test fails.
package harness

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// Deadline is how long a test waits for something that should happen. It is generous on
// purpose: the machines that run these tests are shared and noisy, and a test that waits for
// an event returns as soon as it happens, so a long deadline costs nothing when all is well.
const Deadline = tester.Deadline

// Process is a running program whose standard output is collected line by line and whose
// standard error is kept whole. It is started the one way this repository starts programs,
// tester.Command, which the check command uses too.
type Process struct {
	running *tester.Running
	stderr  *lockedBuffer

	output   tester.Lines // every complete stdout line so far, without its newline
	started  time.Time
	exited   chan struct{}
	exitCode int
}

// Server is a Process that announced the port it listens on.
type Server struct {
	*Process
	Port   int
	Addr   string // 127.0.0.1:Port, ready to dial
	Poller string // the poller named on the second line (stages 6 and 7)
}

var startedLine = regexp.MustCompile(`^Server: started\. Listening to new connections on port (\d+)\.\.\.$`)

// StartServerProcess is StartServer without a test: the caller must call Kill. On an error
// after the start the server is returned too, so that the caller can kill it.
func StartServerProcess(pkg string, args ...string) (*Server, error) {
	hasAddr := false
	for _, a := range args {
		if a == "-addr" || strings.HasPrefix(a, "-addr=") || a == "--addr" || strings.HasPrefix(a, "--addr=") {
			hasAddr = true
		}
	}
	if !hasAddr {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	bin, err := BuildBinary(pkg)
	if err != nil {
		return nil, err
	}
	p, err := StartProcess(bin, nil, args...)
	if err != nil {
		return nil, err
	}
	return Listening(p, pkg)
}

// Listening waits for the "started" line of the workshop server p, the program of folder pkg
// (and, from stage 5 on, for the line that names its poller), and learns its port from it. On
// an error the server is returned too, so that the caller can kill it.
func Listening(p *Process, pkg string) (*Server, error) {
	s := &Server{Process: p}
	first, ok := p.output.Next(Deadline, nil)
	if !ok {
		return s, fmt.Errorf("%s printed no started line within %v; stderr: %q", pkg, Deadline, p.Stderr())
	}
	port := StartedPort(first)
	if port == "" {
		return s, fmt.Errorf("%s: first line %q is not the started line; stderr: %q", pkg, first, p.Stderr())
	}
	s.Port, _ = strconv.Atoi(port)
	s.Addr = net.JoinHostPort("127.0.0.1", port)
	if announcesPoller[pkg] {
		second, ok := p.output.Next(Deadline, nil)
		m := pollerLine.FindStringSubmatch(second)
		if !ok || m == nil {
			return s, fmt.Errorf("%s: second line %q does not name the poller; stderr: %q", pkg, second, p.Stderr())
		}
		s.Poller = m[1]
	}
	return s, nil
}

// StartedPort is the port that a workshop server's "started" line names, or "" if line is
// not that line.
func StartedPort(line string) string {
	if m := startedLine.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

// NativePoller is the poller stages 5 to 7 offer besides select on this system.
func NativePoller() string {
	if runtime.GOOS == "darwin" {
		return "kqueue"
	}
	return "epoll"
}

// Stages 5 to 7 say on their second line which poller they wait with.
var (
	announcesPoller = map[string]bool{"stage5-select": true, "stage6-hardened": true, "stage7-identity": true}
	pollerLine      = regexp.MustCompile(`^Server: waiting for sockets with (\w+) \(-poller (\w+)\)$`)
)

// StartProcess is Start without a test: the caller must call Kill.
func StartProcess(bin string, stdin io.Reader, args ...string) (*Process, error) {
	p := &Process{stderr: &lockedBuffer{}, exited: make(chan struct{})}
	running, err := tester.Command{
		Args:   append([]string{bin}, args...),
		Stdin:  stdin,
		Stderr: p.stderr,
		// Line runs on the collecting goroutine and never touches a *testing.T: failures are
		// reported by the test goroutine when it looks at the lines.
		Line: p.output.Add,
	}.Start()
	if err != nil {
		return nil, err
	}
	p.running, p.started = running, time.Now()
	go p.collect()
	if err := track(p); err != nil {
		return nil, err
	}
	return p, nil
}

// collect waits for the end of the output and of the program.
func (p *Process) collect() {
	<-p.running.Read()
	<-p.running.Exited()
	p.exitCode = exitCode(p.running.State())
	p.output.End()
	untrack(p)
	close(p.exited)
}

func exitCode(state *os.ProcessState) int {
	if state == nil {
		return -1
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// Await waits up to d for the next line of standard output for which match is true, passing
// over the others: NextLine and WaitLine for a caller without a test.
func (p *Process) Await(d time.Duration, match func(line string) bool) (string, bool) {
	return p.output.Next(d, match)
}

// Lines returns every complete line printed so far.
func (p *Process) Lines() []string {
	return p.output.All()
}

// Stderr returns everything printed on standard error so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// PID is the process id.
func (p *Process) PID() int { return p.running.PID() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// ExitState is WaitExit for callers without a test; ok is false if it has not ended in time.
func (p *Process) ExitState(timeout time.Duration) (*os.ProcessState, bool) {
	select {
	case <-p.exited:
		return p.running.State(), true
	case <-time.After(timeout):
		return nil, false
	}
}

// Kill stops the process (if it still runs) and waits for its output to be collected.
func (p *Process) Kill() {
	if !p.Exited() {
		p.running.Kill(0)
	}
	select {
	case <-p.exited:
	case <-time.After(Deadline):
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
