//go:build linux || darwin

package tester

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultPort is where a server is expected when its command names no {port} or {addr}: the
// port the article and every stage listen on by default.
const DefaultPort = 5555

// StopGrace is how long a server has to exit after SIGTERM before it is killed.
const StopGrace = 2 * time.Second

// DefaultWait is how long a server's port may take to open after a start, unless
// Program.Ready says otherwise (the check command's -wait).
const DefaultWait = 30 * time.Second

// Program is somebody's server, in any language: a command that the checks start, stop and
// start again. It runs in its own process group, so that stopping it stops everything it
// started too (the compiled program under `go run`, the interpreter under a shell script), and
// its CPU use is the whole group's.
type Program struct {
	// Args is the command; "{port}" and "{addr}" in it are replaced by the port the checks
	// chose and by 127.0.0.1:PORT. PORT is also set in its environment.
	Args []string
	// Ready is how long the port may take to accept a connection after a start (a `go run`
	// compiles first, a JVM takes its time). Zero means DefaultWait.
	Ready time.Duration
	// Pipe gives the server a pipe for its output instead of a pseudo-terminal, for a server
	// that behaves differently on a terminal.
	Pipe bool

	mu         sync.Mutex
	running    *Running
	noTerminal string // why the server's output went to a pipe, when a terminal was wanted
	port       int
	sink       func(string) // where its output lines go
	// namedDefault is set once the server's output has named DefaultPort, since its start.
	namedDefault bool
	closed       bool // StopForGood was called: nothing starts any more
}

// FixedPort reports whether the command says nowhere where to listen, so that the server is
// expected on DefaultPort.
func (p *Program) FixedPort() bool {
	for _, a := range p.Args {
		if strings.Contains(a, "{port}") || strings.Contains(a, "{addr}") {
			return false
		}
	}
	return true
}

// Command is the command line for port, as it is run.
func (p *Program) Command(port int) []string {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := make([]string, len(p.Args))
	for i, a := range p.Args {
		args[i] = strings.ReplaceAll(strings.ReplaceAll(a, "{addr}", addr), "{port}", strconv.Itoa(port))
	}
	return args
}

// FreePort returns a port that nothing uses, for a server to be told. It is chosen below the
// ports the kernel hands out by itself (from 32768 on Linux, 49152 on macOS): one of those,
// freed for the server to take, may be given meanwhile to any socket that binds port 0 or
// connects, as a test's other servers and clients do by the thousand, and the check would
// then talk to somebody else's listener. It is tried without SO_REUSEADDR, so that connections
// left in TIME_WAIT on it count as using it (a server without that option could not listen
// there). Each process takes the ports of a slice of its own in turn, so that two testers
// running side by side (the tests, and the check commands they start) do not hand out the
// same port while its server is still starting.
func FreePort() (int, error) {
	freePorts.Lock()
	defer freePorts.Unlock()
	for range portSlice {
		freePorts.next = (freePorts.next + 1) % portSlice
		port := freePorts.first + freePorts.next
		if l, err := withoutReuse.Listen(context.Background(), "tcp4", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port from %d to %d", freePorts.first, freePorts.first+portSlice-1)
}

// portSlice is how many ports each process takes in turn, of the 22,000 from 10000 to 31999.
const portSlice = 500

// freePorts is this process's slice, chosen by its pid, and where in it FreePort is.
var freePorts = struct {
	sync.Mutex
	first, next int
}{first: 10000 + os.Getpid()%44*portSlice, next: rand.IntN(portSlice)}

// withoutReuse listens without SO_REUSEADDR, as a server that does not set it does.
var withoutReuse = net.ListenConfig{Control: func(_, _ string, raw syscall.RawConn) error {
	var err error
	raw.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0) })
	return err
}}

// PortTaken reports whether something listens on port, on the loopback address or on all
// addresses. It finds out by trying to listen there itself, never by connecting: a server
// that is running on the port (an attendee's own, in another terminal) must not see a
// client come and go that nobody sent.
func PortTaken(port int) bool {
	for _, host := range []string{"127.0.0.1", ""} {
		l, err := portProbe.Listen(nil, "tcp4", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return true
		}
		l.Close()
	}
	return false
}

// Start runs the command for port in a new process group. Every line it prints, on standard
// output or standard error (one terminal, or one pipe, for both, so that their order is
// kept), is passed to sink as it comes.
func (p *Program) Start(port int, sink func(string)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("the checks were stopped")
	}
	command := Command{
		Args: p.Command(port),
		Env: []string{"PORT=" + strconv.Itoa(port),
			// Python holds what it prints in a buffer when its output is a pipe (-pipe).
			"PYTHONUNBUFFERED=1"},
		Terminal: !p.Pipe,
		Group:    true,
		Line: func(line string) {
			p.mu.Lock()
			sink := p.sink
			if namesDefault.MatchString(line) {
				p.namedDefault = true
			}
			p.mu.Unlock()
			if sink != nil {
				sink(line)
			}
		},
	}
	p.namedDefault = false
	running, err := command.Start()
	if errors.Is(err, ErrNoTerminal) {
		// Better a pipe than no check at all: the checks of the log may then wait for lines
		// held in a buffer, and say so.
		p.Pipe, p.noTerminal = true, err.Error()
		command.Terminal = false
		running, err = command.Start()
	}
	if err != nil {
		return err
	}
	p.running, p.port, p.sink = running, port, sink
	return nil
}

// NoTerminal says why the server's output goes to a pipe though a terminal was wanted, or "".
func (p *Program) NoTerminal() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.noTerminal
}

// current is the last command started, or nil.
func (p *Program) current() *Running {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// Exited returns how the last command started has ended, or "" while it runs.
func (p *Program) Exited() string {
	if r := p.current(); r != nil {
		return r.Status()
	}
	return ""
}

// ended is closed once the last command started has ended.
func (p *Program) ended() <-chan struct{} {
	if r := p.current(); r != nil {
		return r.Exited()
	}
	return nil
}

// outputRead is closed once everything the last command started printed has been read.
func (p *Program) outputRead() <-chan struct{} {
	if r := p.current(); r != nil {
		return r.Read()
	}
	return nil
}

// ErrNotReady is why WaitReady gave up: the command ended, or the port never opened.
type ErrNotReady struct {
	Port   int
	Status string        // how the command ended, or "" if it still runs
	Waited time.Duration // how long the port was tried
	// Default is set when the wait was DefaultWait, so that the message names -wait.
	Default bool
	// DefaultTaken is set when another port was asked for but DefaultPort is taken: the
	// server may not have read where to listen.
	DefaultTaken bool
	// Elsewhere is the port the server listens on instead of Port, if its listening sockets
	// or its output showed it; Said is set when only its output did.
	Elsewhere int
	Said      bool
}

func (e *ErrNotReady) Error() string {
	if e.Elsewhere != 0 {
		seen := "listens"
		if e.Said {
			seen = "says it listens, and something listens there,"
		}
		fix := "put {port} or {addr} in the command where your server takes its port"
		if e.Elsewhere == DefaultPort {
			fix += fmt.Sprintf(", or leave both out if it always listens on %d", DefaultPort)
		}
		return fmt.Sprintf("your server %s on port %d, not on port %d that the tester gave it: "+
			"does it ignore {port} or {addr}? (%s)", seen, e.Elsewhere, e.Port, fix)
	}
	if e.Status != "" {
		return fmt.Sprintf("your server ended (%s) before port %d accepted a connection", e.Status, e.Port)
	}
	also := ""
	if e.DefaultTaken {
		also = fmt.Sprintf("; something listens on %d: does your server ignore {port} or {addr}?", DefaultPort)
	}
	wait := ""
	if e.Default {
		wait = " (the default; a server that starts slowly can be given longer with -wait, as in -wait 2m)"
	}
	return fmt.Sprintf("port %d did not accept a connection within %s of the start%s%s", e.Port, human(e.Waited), wait, also)
}

// WaitReady connects to the port until a connection succeeds, and returns that connection:
// a server that serves one client only (stages 1 and 2) must be handed this very connection
// as its client, since it will never accept another.
func (p *Program) WaitReady() (net.Conn, error) {
	wait := p.Ready
	if wait == 0 {
		wait = DefaultWait
	}
	p.mu.Lock()
	addr, port := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), p.port
	p.mu.Unlock()
	exited := p.ended()
	start := time.Now()
	var looked, elsewhereSince time.Time
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn, nil
		}
		if status := p.Exited(); status != "" {
			return nil, &ErrNotReady{Port: port, Status: status, Waited: time.Since(start)}
		}
		// A server that ignores {port} is found out as soon as it listens elsewhere, not at
		// the end of the wait; it is given a second, in case it listens on another port first.
		if time.Since(looked) >= 200*time.Millisecond {
			looked = time.Now()
			elsewhere, said := p.elsewhere(port)
			switch {
			case elsewhere == 0:
				elsewhereSince = time.Time{}
			case elsewhereSince.IsZero():
				elsewhereSince = time.Now()
			case time.Since(elsewhereSince) >= time.Second:
				return nil, &ErrNotReady{Port: port, Waited: time.Since(start), Elsewhere: elsewhere, Said: said}
			}
		}
		if time.Since(start) > wait {
			return nil, &ErrNotReady{Port: port, Waited: wait, Default: p.Ready == 0,
				DefaultTaken: port != DefaultPort && PortTaken(DefaultPort)}
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// elsewhere returns a port the server listens on instead of port, if its listening sockets
// show it (Linux), or if its output names DefaultPort and something listens there (said).
func (p *Program) elsewhere(port int) (elsewhere int, said bool) {
	if pgid := p.Group(); pgid != 0 {
		if ports := groupListens(pgid); len(ports) > 0 && !slices.Contains(ports, port) {
			return ports[0], false
		}
	}
	p.mu.Lock()
	named := p.namedDefault
	p.mu.Unlock()
	if named && port != DefaultPort && PortTaken(DefaultPort) {
		return DefaultPort, true
	}
	return 0, false
}

// namesDefault matches a line that names DefaultPort ("Listening on port 5555").
var namesDefault = regexp.MustCompile(`\b` + strconv.Itoa(DefaultPort) + `\b`)

// Stop ends the server's whole process group: SIGTERM, then SIGKILL if anything in it still
// runs after StopGrace. It reports whether it had to kill, and waits until everything the
// server printed has been read.
func (p *Program) Stop() (killed bool) {
	r := p.current()
	if r == nil {
		return false
	}
	return r.Stop(StopGrace)
}

// StopForGood is Stop for a tester that is leaving: no server starts after it, so that a
// check starting its next server at that very moment cannot leave one running.
func (p *Program) StopForGood() (killed bool) {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return p.Stop()
}

// PauseOutput stops reading the server's output, until ResumeOutput or Stop: once the pipe
// or terminal is full, the server's next write to it blocks.
func (p *Program) PauseOutput() {
	if r := p.current(); r != nil {
		r.PauseOutput()
	}
}

// ResumeOutput reads the server's output again.
func (p *Program) ResumeOutput() {
	if r := p.current(); r != nil {
		r.ResumeOutput()
	}
}

// CPU measures how much of one core the server's whole process group uses over window.
func (p *Program) CPU(window time.Duration) (float64, error) {
	r := p.current()
	if r == nil {
		return 0, fmt.Errorf("the server is not running")
	}
	return r.CPU(window)
}

// Group is the process group of the last command started (0 before any).
func (p *Program) Group() int {
	if r := p.current(); r != nil {
		return r.pgid
	}
	return 0
}

// GroupAlive reports whether any process of the server's group still runs.
func (p *Program) GroupAlive() bool {
	pgid := p.Group()
	return pgid != 0 && groupAlive(pgid)
}

// ShellWords writes a command the way it would be typed, quoting words with spaces or quotes.
func ShellWords(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = w
		if w == "" || strings.ContainsAny(w, " \t\n'\"\\$;&|<>()*?!`") {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
	}
	return strings.Join(quoted, " ")
}
