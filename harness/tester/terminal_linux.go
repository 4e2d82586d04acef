package tester

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenTerminal opens a new pseudo-terminal of columns x rows and returns its two sides: the
// master, which this program reads and writes, and the slave (/dev/pts/N), which a program
// started on it sees as its terminal. The master is non-blocking, so that Go's poller waits
// for output and closing it stops a pending Read.
func OpenTerminal(columns, rows int) (master, slave *os.File, err error) {
	// Opening /dev/ptmx creates a new pair. The slave side is locked until unlocked, and its
	// number N is asked with TIOCGPTN.
	master, fd, err := openMaster()
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pseudo-terminal: %w", err)
	}
	number, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("asking the pseudo-terminal's number: %w", err)
	}
	return openSlave(master, fmt.Sprintf("/dev/pts/%d", number), columns, rows)
}

// Termios requests: get and set a terminal's settings.
const (
	getTermios = unix.TCGETS
	setTermios = unix.TCSETS
)
