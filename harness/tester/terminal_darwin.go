package tester

import (
	"bytes"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// slaveName grants and unlocks the slave side of the pair whose master is fd, and returns its
// name, /dev/ttysN. macOS does both with ioctls of its own (posix_openpt, grantpt, unlockpt
// and ptsname are built on them).
func slaveName(fd int) (string, error) {
	for _, request := range []uint{unix.TIOCPTYGRANT, unix.TIOCPTYUNLK} {
		if err := unix.IoctlSetInt(fd, request, 0); err != nil {
			return "", fmt.Errorf("preparing the pseudo-terminal: %w", err)
		}
	}
	var name [128]byte
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCPTYGNAME), uintptr(unsafe.Pointer(&name[0]))); errno != 0 {
		return "", fmt.Errorf("asking the pseudo-terminal's name: %w", errno)
	}
	end := bytes.IndexByte(name[:], 0)
	if end < 0 {
		end = len(name)
	}
	return string(name[:end]), nil
}

// Termios requests: get and set a terminal's settings.
const (
	getTermios = unix.TIOCGETA
	setTermios = unix.TIOCSETA
)
