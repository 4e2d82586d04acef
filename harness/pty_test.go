package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// PTYProcess is a program running in a pseudo-terminal, as if someone sat in front of it:
// Type sends keys, Output is every byte the program wrote to its terminal, and Screen is what
// the terminal would show. Start one with StartInPTY (Linux only; elsewhere the test is
// skipped).
type PTYProcess struct {
	cmd      *exec.Cmd
	terminal *os.File // our side of the pseudo-terminal (the master)

	mu        sync.Mutex
	output    []byte
	sizes     []terminalSize // the size it started with, then one for each Resize
	grew      chan struct{}  // closed and replaced whenever output grows or collection ends
	collected bool           // the terminal has nothing more to read

	exited   chan struct{} // closed when the program has ended and exitCode is set
	exitCode int
	restored bool // when it ended, the terminal was back in line mode with echo
}

// collect runs in its own goroutine and never touches a *testing.T: it only stores what the
// program writes, and the test goroutine looks at it.
func (p *PTYProcess) collect() {
	buffer := make([]byte, 4096)
	for {
		n, err := p.terminal.Read(buffer)
		p.mu.Lock()
		p.output = append(p.output, buffer[:n]...)
		if err != nil { // EIO once the program's side is closed, or our side was closed
			p.collected = true
		}
		close(p.grew)
		p.grew = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Type writes s to the terminal as if it were typed: "\r" is Enter, "\x03" Ctrl-C,
// "\x7f" Backspace.
func (p *PTYProcess) Type(t testing.TB, s string) {
	t.Helper()
	_, err := p.terminal.WriteString(s)
	require.NoError(t, err)
}

// Output returns every byte the program has written to the terminal so far, escape
// sequences and all.
func (p *PTYProcess) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.output)
}

// terminalSize is a size the terminal was given, from the moment the program had written
// the first outputLength bytes.
type terminalSize struct {
	columns, rows int
	outputLength  int
}

// Screen returns what the terminal shows, scrolled-off rows included: the output played
// through a TerminalScreen of the terminal's size (and resized where Resize was called),
// trailing spaces and blank rows dropped, rows joined by "\n".
func (p *PTYProcess) Screen() string {
	p.mu.Lock()
	output, sizes := string(p.output), p.sizes
	p.mu.Unlock()
	screen := NewTerminalScreen(sizes[0].columns, sizes[0].rows)
	played := 0
	for _, size := range sizes[1:] {
		screen.Write(output[played:size.outputLength])
		screen.Resize(size.columns, size.rows)
		played = size.outputLength
	}
	screen.Write(output[played:])
	return screen.String()
}

// WaitOutput waits until the raw output contains want, failing the test after the Deadline.
func (p *PTYProcess) WaitOutput(t testing.TB, want string) {
	t.Helper()
	p.WaitUntil(t, fmt.Sprintf("%q on the output", want), func() bool { return strings.Contains(p.Output(), want) })
}

// WaitScreen waits until the screen contains want, failing the test after the Deadline.
func (p *PTYProcess) WaitScreen(t testing.TB, want string) {
	t.Helper()
	p.WaitUntil(t, fmt.Sprintf("%q on the screen", want), func() bool { return strings.Contains(p.Screen(), want) })
}

// WaitUntil waits until done reports true, looking again each time the program writes,
// failing the test after the Deadline; what says what was awaited.
func (p *PTYProcess) WaitUntil(t testing.TB, what string, done func() bool) {
	t.Helper()
	if p.waitFor(Deadline, done) {
		return
	}
	if p.isCollected() {
		t.Fatalf("the program's terminal closed without %s:\n%s\nraw: %q", what, p.Screen(), p.Output())
	}
	t.Fatalf("no %s within %v:\n%s\nraw: %q", what, Deadline, p.Screen(), p.Output())
}

// waitFor waits up to d until done reports true, looking again each time the program writes,
// and says whether it did; it gives up early once the terminal's output is all collected.
func (p *PTYProcess) waitFor(d time.Duration, done func() bool) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		grew, collected := p.grew, p.collected
		p.mu.Unlock()
		if done() {
			return true
		}
		if collected {
			return false
		}
		select {
		case <-grew:
		case <-timeout.C:
			return false
		}
	}
}

func (p *PTYProcess) isCollected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.collected
}

// WaitExit waits up to timeout for the program to end and returns its exit status (128+N
// for a program killed by signal N). Afterwards Output and Screen hold everything it wrote,
// and TerminalRestored tells how it left the terminal.
func (p *PTYProcess) WaitExit(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("still running after %v; screen:\n%s", timeout, p.Screen())
	}
	p.waitCollected(Deadline)
	return p.exitCode
}

// TerminalRestored reports whether, when the program ended, its terminal was in ordinary
// line mode with echo (ICANON and ECHO on), as a shell expects to find it. Call it after
// WaitExit.
func (p *PTYProcess) TerminalRestored() bool {
	<-p.exited
	return p.restored
}

// Signal sends sig to the program.
func (p *PTYProcess) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(sig))
}

// Kill stops the program if it still runs, and closes the terminal.
func (p *PTYProcess) Kill() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		select {
		case <-p.exited:
		case <-time.After(Deadline):
		}
	}
	p.waitCollected(time.Second)
	p.terminal.Close()
}

// waitCollected waits up to d for the collector to have read everything.
func (p *PTYProcess) waitCollected(d time.Duration) { p.waitFor(d, p.isCollected) }
