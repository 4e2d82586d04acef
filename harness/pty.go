package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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
	grew      chan struct{} // closed and replaced whenever output grows or collection ends
	collected bool          // the terminal has nothing more to read

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

// Screen returns what the terminal shows: the output with carriage returns, backspaces and
// line erasing (ESC [ K) applied, trailing spaces and blank lines dropped, lines joined by
// "\n".
func (p *PTYProcess) Screen() string { return RenderScreen(p.Output()) }

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
	timeout := time.NewTimer(Deadline)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		grew, collected := p.grew, p.collected
		p.mu.Unlock()
		if done() {
			return
		}
		if collected {
			t.Fatalf("the program's terminal closed without %s:\n%s\nraw: %q", what, p.Screen(), p.Output())
		}
		select {
		case <-grew:
		case <-timeout.C:
			t.Fatalf("no %s within %v:\n%s\nraw: %q", what, Deadline, p.Screen(), p.Output())
		}
	}
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

// PID is the program's process id.
func (p *PTYProcess) PID() int { return p.cmd.Process.Pid }

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
func (p *PTYProcess) waitCollected(d time.Duration) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		grew, collected := p.grew, p.collected
		p.mu.Unlock()
		if collected {
			return
		}
		select {
		case <-grew:
		case <-timeout.C:
			return
		}
	}
}

// RenderScreen plays output the way a terminal would and returns the text it shows. It
// knows what line-based programs use: "\r", "\n" (down one line, same column; the terminal
// itself sends "\r\n" for a program's "\n"), backspace, tab, and ESC [ K (erase to the end of
// the line); other escape sequences are dropped. Lines do not wrap.
func RenderScreen(output string) string {
	var lines [][]rune
	row, column := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		for len(lines[row]) <= column {
			lines[row] = append(lines[row], ' ')
		}
		lines[row][column] = r
		column++
	}
	for i := 0; i < len(output); {
		r, size := utf8.DecodeRuneInString(output[i:])
		i += size
		switch {
		case r == '\r':
			column = 0
		case r == '\n':
			row++
		case r == '\b':
			column = max(column-1, 0)
		case r == '\t':
			for {
				put(' ')
				if column%8 == 0 {
					break
				}
			}
		case r == 0x1b && i < len(output) && output[i] == '[':
			// A control sequence: ESC [ parameters final-letter.
			end := i + 1
			for end < len(output) && (output[end] < 0x40 || output[end] > 0x7e) {
				end++
			}
			if end < len(output) && output[end] == 'K' && row < len(lines) {
				switch output[i+1 : end] {
				case "", "0":
					lines[row] = lines[row][:min(column, len(lines[row]))]
				case "2":
					lines[row] = nil
				}
			}
			i = end + 1
		case r == 0x1b:
			i++ // ESC and one more character
		case r < 0x20 || r == 0x7f:
		default:
			put(r)
		}
	}
	text := make([]string, len(lines))
	for n, line := range lines {
		text[n] = strings.TrimRight(string(line), " ")
	}
	return strings.TrimRight(strings.Join(text, "\n"), "\n")
}
