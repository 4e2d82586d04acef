package main

import "golang.org/x/sys/unix"

// The ioctl requests that read and set a terminal's settings are named differently on Linux.
const (
	getTermios = unix.TCGETS
	setTermios = unix.TCSETS
)
