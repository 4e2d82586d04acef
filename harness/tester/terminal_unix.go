//go:build linux || darwin

package tester

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// openMaster opens /dev/ptmx, which creates a new pair of pseudo-terminal sides, and returns
// the master side, non-blocking, with its descriptor.
func openMaster() (*os.File, int, error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), fd, nil
}

// openSlave opens the slave side called name of master's pair, and gives it its size.
func openSlave(master *os.File, name string, columns, rows int) (*os.File, *os.File, error) {
	slave, err := os.OpenFile(name, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("opening %s: %w", name, err)
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
