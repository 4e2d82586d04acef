//go:build !linux

package harness

import "testing"

// StartInPTY would run bin in a pseudo-terminal. The helper opens one through Linux's
// /dev/ptmx ioctls (TIOCSPTLCK, TIOCGPTN), so elsewhere the test is skipped.
func StartInPTY(t testing.TB, bin string, args ...string) *PTYProcess {
	t.Helper()
	t.Skip("pseudo-terminal tests need Linux (/dev/ptmx with the TIOCGPTN ioctl); skipped on this OS")
	return nil
}

// StartInPTYOfSize is StartInPTY in a terminal of the given size: skipped here too.
func StartInPTYOfSize(t testing.TB, columns, rows int, bin string, args ...string) *PTYProcess {
	t.Helper()
	return StartInPTY(t, bin, args...)
}

// Resize is never reached here: the test was skipped when it tried to start the program.
func (p *PTYProcess) Resize(t testing.TB, columns, rows int) {}
