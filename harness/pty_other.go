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
