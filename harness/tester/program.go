//go:build linux || darwin

package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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

// Program is somebody's server, in any language: a command that the checks start, stop and
// start again. It runs in its own process group, so that stopping it stops everything it
// started too (the compiled program under `go run`, the interpreter under a shell script), and
// its CPU use is the whole group's.
type Program struct {
	// Args is the command; "{port}" and "{addr}" in it are replaced by the port the checks
	// chose and by 127.0.0.1:PORT. PORT is also set in its environment.
	Args []string
	// Ready is how long the port may take to accept a connection after a start (a `go run`
	// compiles first). Zero means 30 seconds.
	Ready time.Duration

	mu     sync.Mutex
	cmd    *exec.Cmd
	pgid   int
	port   int
	exited chan struct{} // closed once the command has ended and status is set
	status string        // how it ended: "exit status 1", "signal: killed"
	read   chan struct{} // closed once everything it printed has been read
	sink   func(string)  // where its output lines go
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

// FreePort asks the kernel for a port nobody listens on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortTaken reports whether something already accepts connections on 127.0.0.1:port.
func PortTaken(port int) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// Start runs the command for port in a new process group. Every line it prints, on standard
// output or standard error (one pipe for both, so that their order is kept), is passed to
// sink as it comes.
func (p *Program) Start(port int, sink func(string)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.Args) == 0 {
		return errors.New("no command to run")
	}
	args := p.Command(port)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port),
		// Python buffers what it prints when its output is a pipe, and the log would come out
		// only when it exits.
		"PYTHONUNBUFFERED=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	reader, writer, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = writer, writer
	if err := cmd.Start(); err != nil {
		reader.Close()
		writer.Close()
		return err
	}
	writer.Close() // the server's copies keep it open until the last of them exits
	p.cmd, p.pgid, p.port, p.sink = cmd, cmd.Process.Pid, port, sink
	p.exited, p.read, p.status = make(chan struct{}), make(chan struct{}), ""
	go p.collect(reader, p.read)
	go p.wait(cmd, p.exited)
	return nil
}

func (p *Program) collect(output io.ReadCloser, done chan struct{}) {
	defer close(done)
	defer output.Close()
	r := bufio.NewReader(output)
	for {
		line, err := r.ReadString('\n')
		if line != "" {
			p.mu.Lock()
			sink := p.sink
			p.mu.Unlock()
			if sink != nil {
				sink(strings.TrimSuffix(line, "\n"))
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Program) wait(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	p.mu.Lock()
	p.status = status
	p.mu.Unlock()
	close(exited)
}

// Exited returns how the last command started has ended, or "" while it runs.
func (p *Program) Exited() string {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	if exited == nil {
		return ""
	}
	select {
	case <-exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.status
	default:
		return ""
	}
}

// ErrNotReady is why WaitReady gave up: the command ended, or the port never opened.
type ErrNotReady struct {
	Port   int
	Status string        // how the command ended, or "" if it still runs
	Waited time.Duration // how long the port was tried
	// DefaultTaken is set when another port was asked for but DefaultPort accepts
	// connections: the server may not have read where to listen.
	DefaultTaken bool
}

func (e *ErrNotReady) Error() string {
	if e.Status != "" {
		return fmt.Sprintf("your server ended (%s) before port %d accepted a connection", e.Status, e.Port)
	}
	also := ""
	if e.DefaultTaken {
		also = fmt.Sprintf("; something listens on %d: does your server ignore {port} or {addr}?", DefaultPort)
	}
	return fmt.Sprintf("port %d did not accept a connection within %s of the start "+
		"(the tester tried every 50 ms)%s", e.Port, human(e.Waited), also)
}

// WaitReady connects to the port until a connection succeeds, and returns that connection:
// a server that serves one client only (stages 1 and 2) must be handed this very connection
// as its client, since it will never accept another.
func (p *Program) WaitReady() (net.Conn, error) {
	wait := p.Ready
	if wait == 0 {
		wait = 30 * time.Second
	}
	p.mu.Lock()
	addr, exited := net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), p.exited
	p.mu.Unlock()
	start := time.Now()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn, nil
		}
		if status := p.Exited(); status != "" {
			return nil, &ErrNotReady{Port: p.port, Status: status, Waited: time.Since(start)}
		}
		if time.Since(start) > wait {
			return nil, &ErrNotReady{Port: p.port, Waited: wait,
				DefaultTaken: p.port != DefaultPort && PortTaken(DefaultPort)}
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server's whole process group: SIGTERM, then SIGKILL if anything in it still
// runs after StopGrace. It reports whether it had to kill, and waits until everything the
// server printed has been read.
func (p *Program) Stop() (killed bool) {
	p.mu.Lock()
	cmd, pgid, exited, read := p.cmd, p.pgid, p.exited, p.read
	p.mu.Unlock()
	if cmd == nil {
		return false
	}
	if groupAlive(pgid) {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		if !waitGroup(pgid, exited, StopGrace) {
			killed = true
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			waitGroup(pgid, exited, StopGrace)
		}
	}
	select {
	case <-exited:
	case <-time.After(StopGrace):
	}
	select {
	case <-read:
	case <-time.After(time.Second): // something outside the group still holds the pipe
	}
	return killed
}

// waitGroup waits up to d for the command to end and for its process group to be empty.
func waitGroup(pgid int, exited chan struct{}, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-exited:
			if !groupAlive(pgid) {
				return true
			}
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CPU measures how much of one core the server's whole process group uses over window.
func (p *Program) CPU(window time.Duration) (float64, error) {
	p.mu.Lock()
	pgid := p.pgid
	p.mu.Unlock()
	before, err := groupCPU(pgid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	time.Sleep(window)
	after, err := groupCPU(pgid)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / float64(time.Since(start)), nil
}

// human writes a duration the way a person does: "300 ms", "2 s", "1.5 s".
func human(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
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
