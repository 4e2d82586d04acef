//go:build linux || darwin

package harness

// The checks, the program runner and the /proc reader live in package tester (harness/tester),
// which the check command links without any test framework. These names let the tests of
// this package say what they always said.

import (
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

type (
	Program     = tester.Program
	Check       = tester.Check
	CheckResult = tester.Result
	CheckRun    = tester.Run
	CheckClient = tester.Client
	ErrNotReady = tester.ErrNotReady
)

const (
	DefaultPort = tester.DefaultPort
	StopGrace   = tester.StopGrace
)

var smallReceiveBuffer = tester.SmallReceiveBuffer

// RunCheck starts program, runs check of stage against it and stops it.
func RunCheck(program *Program, stage int, check Check) *CheckResult {
	return tester.RunCheck(program, stage, check)
}

// StageChecks lists the checks of a stage.
func StageChecks(stage int) []Check { return tester.StageChecks(stage) }

// FreePort asks the kernel for a port nobody listens on.
func FreePort() (int, error) { return tester.FreePort() }

// PortTaken reports whether something listens on port, without connecting to it.
func PortTaken(port int) bool { return tester.PortTaken(port) }

// ShellWords writes a command the way it would be typed.
func ShellWords(words []string) string { return tester.ShellWords(words) }

// FloodLine is the i-th line of a flood.
func FloodLine(i int) string { return tester.FloodLine(i) }
