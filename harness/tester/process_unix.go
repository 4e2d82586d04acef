//go:build linux || darwin

package tester

import (
	"os"
	"syscall"
)

// groupAttr starts a program in a process group of its own.
func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig to every process of group pgid.
func signalGroup(pgid int, sig syscall.Signal) { _ = syscall.Kill(-pgid, sig) }

// outputTerminal opens a pseudo-terminal for a program's output: wide, so that nothing a
// program does with the width changes its lines, and with output processing off.
func outputTerminal() (reader, writer *os.File, err error) {
	reader, writer, err = OpenTerminal(500, 50)
	if err != nil {
		return nil, nil, err
	}
	if err := plainOutput(writer); err != nil {
		reader.Close()
		writer.Close()
		return nil, nil, err
	}
	return reader, writer, nil
}
