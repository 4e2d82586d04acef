package tester

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// slaveName unlocks the slave side of the pair whose master is fd (it is locked until then)
// and returns its name, /dev/pts/N, whose number N is asked with TIOCGPTN.
func slaveName(fd int) (string, error) {
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		return "", fmt.Errorf("unlocking the pseudo-terminal: %w", err)
	}
	number, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		return "", fmt.Errorf("asking the pseudo-terminal's number: %w", err)
	}
	return fmt.Sprintf("/dev/pts/%d", number), nil
}

// Termios requests: get and set a terminal's settings.
const (
	getTermios = unix.TCGETS
	setTermios = unix.TCSETS
)
