package main

import "golang.org/x/sys/unix"

// The ioctl requests that read and set a terminal's settings have BSD names on macOS.
const (
	getTermios = unix.TIOCGETA
	setTermios = unix.TIOCSETA
)
