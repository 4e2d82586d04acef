package tester

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenTerminal opens a new pseudo-terminal of columns x rows and returns its two sides: the
// master, which this program reads and writes, and the slave (/dev/ttysN), which a program
// started on it sees as its terminal. macOS names the slave with its own ioctls
// (posix_openpt, grantpt, unlockpt and ptsname are built on them).
func OpenTerminal(columns, rows int) (master, slave *os.File, err error) {
	master, fd, err := openMaster()
	if err != nil {
		return nil, nil, err
	}
	for _, request := range []uint{unix.TIOCPTYGRANT, unix.TIOCPTYUNLK} {
		if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(request), 0); errno != 0 {
			master.Close()
			return nil, nil, fmt.Errorf("preparing the pseudo-terminal: %w", errno)
		}
	}
	var name [128]byte
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCPTYGNAME), uintptr(unsafe.Pointer(&name[0]))); errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("asking the pseudo-terminal's name: %w", errno)
	}
	end := bytes.IndexByte(name[:], 0)
	if end < 0 {
		end = len(name)
	}
	return openSlave(master, string(name[:end]), columns, rows)
}

// Termios requests: get and set a terminal's settings.
const (
	getTermios = unix.TIOCGETA
	setTermios = unix.TIOCSETA
)
