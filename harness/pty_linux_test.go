package harness

import (
	"os/exec"
	"syscall"
	"testing"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// StartInPTY runs the executable bin with args in a new pseudo-terminal of 80x24, as its
// stdin, stdout and stderr and its controlling terminal, the way a shell in a terminal
// window would. The program is killed and the terminal closed when the test ends.
func StartInPTY(t testing.TB, bin string, args ...string) *PTYProcess {
	t.Helper()
	return StartInPTYOfSize(t, 80, 24, bin, args...)
}

// StartInPTYOfSize is StartInPTY in a terminal of the given number of columns and rows.
func StartInPTYOfSize(t testing.TB, columns, rows int, bin string, args ...string) *PTYProcess {
	t.Helper()
	p, err := startInPTY(terminalSize{columns: columns, rows: rows}, bin, args...)
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	return p
}

// Resize gives the terminal a new size, as dragging the window's corner does: the kernel
// tells the program with SIGWINCH. Screen plays the output written so far at the old size,
// and the rest at the new one, so call it while the program is waiting for input.
func (p *PTYProcess) Resize(t testing.TB, columns, rows int) {
	t.Helper()
	p.mu.Lock()
	p.sizes = append(p.sizes, terminalSize{columns: columns, rows: rows, outputLength: len(p.output)})
	p.mu.Unlock()
	// The size belongs to the pair: set on our side, the program's side sees it.
	require.NoError(t, unix.IoctlSetWinsize(int(p.terminal.Fd()), unix.TIOCSWINSZ,
		&unix.Winsize{Row: uint16(rows), Col: uint16(columns)}))
}

func startInPTY(size terminalSize, bin string, args ...string) (*PTYProcess, error) {
	// One way to open a pseudo-terminal, the tester's, which runs servers on one.
	terminal, slave, err := tester.OpenTerminal(size.columns, size.rows)
	if err != nil {
		return nil, err
	}

	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// A new session whose controlling terminal is the slave (fd 0 in the child), so that the
	// program is in a terminal of its own and not in the one running the tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		terminal.Close()
		return nil, err
	}
	p := &PTYProcess{cmd: cmd, terminal: terminal, sizes: []terminalSize{size},
		grew: make(chan struct{}), exited: make(chan struct{})}
	go p.collect()
	// We keep our copy of the slave open until the program has ended, to read the settings
	// it left the terminal in; closing it then lets the collector read the rest of the
	// output and then see the end (EIO).
	go func() {
		err := cmd.Wait()
		_ = err // the exit status is in the process state
		restored := tester.TerminalRestored(slave)
		slave.Close()
		p.mu.Lock()
		p.exitCode = exitCode(cmd.ProcessState)
		p.restored = restored
		p.mu.Unlock()
		close(p.exited)
	}()
	return p, nil
}
