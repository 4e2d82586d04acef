//go:build !linux && !darwin

package main

import "os"

// rawMode is not available here: a Windows console is switched with SetConsoleMode, not
// termios. The chat still works in line mode, but a message that arrives while you type is
// printed in the middle of your line.
func rawMode(stdin *os.File) (restore func(), isTerminal bool) {
	return nil, false
}

// terminalWidth is only needed in raw mode; 0 means "the default".
func terminalWidth(f *os.File) int { return 0 }

// notifyResize: there is no SIGWINCH here, and without raw mode nothing needs the width.
func notifyResize(resized chan<- os.Signal) {}
