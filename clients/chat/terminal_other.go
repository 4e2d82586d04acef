//go:build !linux && !darwin

package main

import "os"

// rawMode is not available here: a Windows console is switched with SetConsoleMode, not
// termios. The chat still works in line mode, but a message that arrives while you type is
// printed in the middle of your line.
func rawMode(stdin *os.File) (restore func(), isTerminal bool) {
	return nil, false
}
