package tester

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Deadline is how long a check waits for something that should happen. It is generous on
// purpose: a check that waits for an event goes on as soon as it happens, so a long deadline
// costs nothing when all is well, and a shared, noisy machine does not fail a good server.
const Deadline = 10 * time.Second

// Command says how to start a program. It is the one way this repository starts and watches
// a program: the tester's Program (somebody's server) and the harness's Process (our own
// programs, in the tests) are both built on it.
type Command struct {
	Args  []string
	Env   []string  // added to this program's environment
	Stdin io.Reader // nil: /dev/null
	// Terminal puts standard output and error on a pseudo-terminal, as `script` and `unbuffer`
	// do: a program's runtime (C's stdio, Nim, Python...) then writes each line as it is
	// printed, where into a pipe it would hold lines in a buffer until it is full or the
	// program exits.
	Terminal bool
	// Stderr receives standard error apart; nil sends it with standard output into Line, in
	// the order they were written.
	Stderr io.Writer
	Group  bool              // a process group of its own, stopped as a whole
	Line   func(line string) // each line of output as it comes, without its "\n"
}

// ErrNoTerminal is why a Command with Terminal could not start: no pseudo-terminal could be
// opened.
var ErrNoTerminal = errors.New("no pseudo-terminal for the program's output")

// Running is a started Command.
type Running struct {
	cmd    *exec.Cmd
	pgid   int           // its process group, if Group (else 0)
	exited chan struct{} // closed once it has ended and status and state are set
	read   chan struct{} // closed once everything it printed has been read
	status string        // how it ended: "exit status 1", "signal: killed"
	state  *os.ProcessState

	mu     sync.Mutex
	resume chan struct{} // while its output is not read (PauseOutput): closed to read again
}

// Start starts the command; its output is passed to Line from a goroutine of its own.
func (c Command) Start() (*Running, error) {
	if len(c.Args) == 0 {
		return nil, errors.New("no command to run")
	}
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = c.Stdin
	if c.Group {
		cmd.SysProcAttr = groupAttr()
	}
	var reader, writer *os.File
	var err error
	if c.Terminal {
		reader, writer, err = outputTerminal()
	} else {
		reader, writer, err = os.Pipe()
	}
	if err != nil {
		if reader != nil {
			reader.Close()
			writer.Close()
		}
		if c.Terminal {
			return nil, fmt.Errorf("%w: %v", ErrNoTerminal, err)
		}
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = writer, writer
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
	if err := cmd.Start(); err != nil {
		reader.Close()
		writer.Close()
		return nil, err
	}
	// The program's copies keep the pipe or terminal open until the last of them exits; then
	// the reader sees the end (EOF, or EIO from a terminal).
	writer.Close()
	r := &Running{cmd: cmd, exited: make(chan struct{}), read: make(chan struct{})}
	if c.Group {
		r.pgid = cmd.Process.Pid
	}
	go r.collect(pausable{r, reader}, c.Line)
	go r.wait()
	return r, nil
}

func (r *Running) collect(output pausable, line func(string)) {
	defer close(r.read)
	defer output.file.Close()
	in := bufio.NewReaderSize(output, 64<<10)
	for {
		text, err := in.ReadString('\n')
		if text != "" && line != nil {
			line(strings.TrimSuffix(text, "\n"))
		}
		if err != nil {
			return
		}
	}
}

// pausable is the program's output as collect reads it: no read is made while it is paused,
// so that once the pipe or terminal is full the program's next write blocks.
type pausable struct {
	r    *Running
	file *os.File
}

func (p pausable) Read(b []byte) (int, error) {
	p.r.mu.Lock()
	resume := p.r.resume
	p.r.mu.Unlock()
	if resume != nil {
		<-resume
	}
	return p.file.Read(b)
}

// PauseOutput stops reading the program's output, as a terminal paused with Ctrl-S or a pipe
// nobody reads: what it prints fills the pipe or terminal, and then its writes block. A read
// already waiting still returns what comes first, so the program blocks a read's worth (64 KiB)
// later.
func (r *Running) PauseOutput() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resume == nil {
		r.resume = make(chan struct{})
	}
}

// ResumeOutput reads the program's output again.
func (r *Running) ResumeOutput() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.resume != nil {
		close(r.resume)
		r.resume = nil
	}
}

func (r *Running) wait() {
	err := r.cmd.Wait()
	status := "exit status 0"
	if err != nil {
		status = err.Error()
	}
	r.status, r.state = status, r.cmd.ProcessState
	close(r.exited)
}

// PID is the program's process id.
func (r *Running) PID() int { return r.cmd.Process.Pid }

// Exited is closed once the program has ended.
func (r *Running) Exited() <-chan struct{} { return r.exited }

// Read is closed once everything the program printed has been read.
func (r *Running) Read() <-chan struct{} { return r.read }

// Status says how the program ended ("exit status 1", "signal: segmentation fault"), or ""
// while it runs.
func (r *Running) Status() string {
	select {
	case <-r.exited:
		return r.status
	default:
		return ""
	}
}

// State is the ended program's state, or nil while it runs.
func (r *Running) State() *os.ProcessState {
	select {
	case <-r.exited:
		return r.state
	default:
		return nil
	}
}

// Signal sends sig to the program.
func (r *Running) Signal(sig os.Signal) error { return r.cmd.Process.Signal(sig) }

// Kill kills the program, and its group if it has one, and waits up to wait for its end.
func (r *Running) Kill(wait time.Duration) {
	if r.pgid != 0 {
		signalGroup(r.pgid, syscall.SIGKILL)
	}
	_ = r.cmd.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(wait):
	}
}

// Stop ends the program's whole process group: SIGTERM, then SIGKILL if anything in it still
// runs after grace. It reports whether it had to kill, and waits until everything the program
// printed has been read (or a second, if something outside the group still holds its output).
func (r *Running) Stop(grace time.Duration) (killed bool) {
	r.ResumeOutput() // its output is read to the end, and it may have to print to stop
	if r.pgid != 0 && groupAlive(r.pgid) {
		signalGroup(r.pgid, syscall.SIGTERM)
		if !r.waitGroup(grace) {
			killed = true
			signalGroup(r.pgid, syscall.SIGKILL)
			r.waitGroup(grace)
		}
	} else if r.pgid == 0 && r.Status() == "" {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(grace):
			killed = true
			_ = r.cmd.Process.Kill()
		}
	}
	select {
	case <-r.exited:
	case <-time.After(grace):
	}
	select {
	case <-r.read:
	case <-time.After(time.Second):
	}
	return killed
}

// waitGroup waits up to d for the program to end and its process group to be empty.
func (r *Running) waitGroup(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		select {
		case <-r.exited:
			if !groupAlive(r.pgid) {
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

// CPU measures how much of one core the program uses over window: its whole process group's
// if it has one.
func (r *Running) CPU(window time.Duration) (float64, error) {
	if r.pgid != 0 {
		return CPUShare(window, func() (time.Duration, error) { return GroupCPUTime(r.pgid) })
	}
	pid := r.PID()
	return CPUShare(window, func() (time.Duration, error) { return CPUTime(pid) })
}

// Lines is a program's output as it comes, line by line: the one place where a test or a
// check waits for the line it expects.
type Lines struct {
	Max   int // how many lines are kept at most, or 0 for all of them
	mu    sync.Mutex
	lines []string
	next  int  // the next line Next looks at
	ended bool // no line will come any more
	grew  chan struct{}
}

// changed wakes whoever waits in Next; l.mu must be held.
func (l *Lines) changed() {
	if l.grew != nil {
		close(l.grew)
	}
	l.grew = make(chan struct{})
}

// Add appends a line, unless Max are kept already.
func (l *Lines) Add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Max > 0 && len(l.lines) >= l.Max {
		return
	}
	l.lines = append(l.lines, line)
	l.changed()
}

// End says that no line will come any more: Next stops waiting.
func (l *Lines) End() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	l.changed()
}

// Next waits up to d for a line, after the last one it returned, for which match is true
// (nil matches any), and returns it; other lines are passed over.
func (l *Lines) Next(d time.Duration, match func(line string) bool) (string, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for l.next < len(l.lines) {
			line := l.lines[l.next]
			l.next++
			if match == nil || match(line) {
				l.mu.Unlock()
				return line, true
			}
		}
		if l.ended {
			l.mu.Unlock()
			return "", false
		}
		if l.grew == nil {
			l.grew = make(chan struct{})
		}
		grew := l.grew
		l.mu.Unlock()
		select {
		case <-grew:
		case <-deadline.C:
			return "", false
		}
	}
}

// All returns every line so far.
func (l *Lines) All() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}
