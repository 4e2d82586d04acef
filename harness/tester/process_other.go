//go:build !linux && !darwin

package tester

import (
	"errors"
	"os"
	"syscall"
)

// Process groups and pseudo-terminals are Unix's: elsewhere a program runs alone, and its
// output goes into a pipe.

func groupAttr() *syscall.SysProcAttr          { return nil }
func signalGroup(pgid int, sig syscall.Signal) {}
func groupAlive(pgid int) bool                 { return false }
func outputTerminal() (reader, writer *os.File, err error) {
	return nil, nil, errors.New("pseudo-terminals need Linux or macOS")
}
