//go:build linux || darwin

package main

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// rawMode switches the terminal on stdin, if it is one, out of line mode. In line mode the
// kernel collects and echoes a whole line and hands it over only at Enter, so this program
// could not know what is being typed, and a message printed meanwhile would land in the
// middle of it. In raw mode each key arrives as it is pressed and nothing is echoed: console
// draws the line itself. It returns the function that puts the terminal back as it was.
func rawMode(stdin *os.File) (restore func(), isTerminal bool) {
	fd := int(stdin.Fd())
	saved, err := unix.IoctlGetTermios(fd, getTermios)
	if err != nil {
		return nil, false // a pipe or a file: line mode it is
	}
	raw := *saved
	// ICANON: no line collecting; ECHO: no echo; ISIG: Ctrl-C arrives as byte 3 rather than
	// as SIGINT, so it is handled like any key; IEXTEN: no Ctrl-V.
	raw.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG | unix.IEXTEN
	// ICRNL: Enter arrives as '\r' untranslated; IXON: Ctrl-S does not freeze the output.
	raw.Iflag &^= unix.ICRNL | unix.IXON
	// Output processing (OPOST) stays on, so "\n" still returns to the left margin.
	raw.Cc[unix.VMIN] = 1 // a read returns as soon as one byte is there
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, setTermios, &raw); err != nil {
		return nil, false
	}
	return func() { unix.IoctlSetTermios(fd, setTermios, saved) }, true
}

// terminalWidth asks the terminal on f how many columns it has (the TIOCGWINSZ ioctl), or
// returns 0 if f is not a terminal.
func terminalWidth(f *os.File) int {
	size, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(size.Col)
}

// notifyResize has the kernel's SIGWINCH, sent whenever the terminal window changes size,
// delivered on resized.
func notifyResize(resized chan<- os.Signal) {
	signal.Notify(resized, unix.SIGWINCH)
}
