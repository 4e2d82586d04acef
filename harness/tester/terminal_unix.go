//go:build linux || darwin

package tester

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// OpenTerminal opens a new pseudo-terminal of columns x rows and returns its two sides: the
// master, which this program reads and writes, and the slave (/dev/pts/N on Linux, /dev/ttysN
// on macOS), which a program started on it sees as its terminal. The master is non-blocking,
// so that Go's poller waits for output and closing it stops a pending Read.
func OpenTerminal(columns, rows int) (master, slave *os.File, err error) {
	// Opening /dev/ptmx creates a new pair.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	name, err := slaveName(fd)
	if err == nil {
		slave, err = os.OpenFile(name, os.O_RDWR|syscall.O_NOCTTY, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ,
		&unix.Winsize{Row: uint16(rows), Col: uint16(columns)}); err != nil {
		slave.Close()
		master.Close()
		return nil, nil, fmt.Errorf("setting the size of %s: %w", name, err)
	}
	return master, slave, nil
}

// plainOutput turns off the terminal's output processing (OPOST), which would make each "\n"
// a program writes "\r\n": its lines come out as it wrote them.
func plainOutput(slave *os.File) error {
	settings, err := unix.IoctlGetTermios(int(slave.Fd()), getTermios)
	if err != nil {
		return err
	}
	settings.Oflag &^= unix.OPOST
	return unix.IoctlSetTermios(int(slave.Fd()), setTermios, settings)
}

// TerminalRestored reports whether the terminal slave is in ordinary line mode with echo
// (ICANON and ECHO on), as a shell expects to find it.
func TerminalRestored(slave *os.File) bool {
	settings, err := unix.IoctlGetTermios(int(slave.Fd()), getTermios)
	return err == nil && settings.Lflag&unix.ICANON != 0 && settings.Lflag&unix.ECHO != 0
}
