//go:build linux || darwin

package harness

import (
	"testing"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// Our stage 6 passes every stage 6 check, with either poller and with its output on a pipe as
// well as a terminal; our lean stage 5 fails each check of what stage 6 adds, with the lesson
// it misses as the hint: a check that passed a server without the lesson would prove nothing.
func TestStage6Checks(t *testing.T) {
	t.Parallel()
	for _, poller := range []string{"select", NativePoller()} {
		for _, check := range tester.StageChecks(6) {
			t.Run(poller+"/"+check.Name, func(t *testing.T) {
				t.Parallel()
				heavyIf(t, check.Name == "shutdown")
				args := []string{"-poller", poller}
				if check.Name == "shutdown" {
					// Ten thousand log lines that the tester reads, slowly under the race
					// detector, before it sees the server end: what is judged is the end.
					args = append(args, "-quiet")
				}
				res := runCheck(t, 6, check.Name, "stage6-hardened", args...)
				switch check.Name {
				case "flood":
					require.Equal(t, "told", res.Notes["flooder"], "the flooder is slowed down and told so, not dropped")
				case "paused-output":
					require.NotEqual(t, "none", res.Notes["log"], "our stage logs every message")
				case "shutdown":
					require.Equal(t, "exit status 0", res.Notes["status"])
				}
			})
		}
	}
	// On a pipe, as `check -pipe` runs a server, the output is paused the same way.
	for _, name := range []string{"paused-output", "shutdown"} {
		t.Run("pipe/"+name, func(t *testing.T) {
			t.Parallel()
			heavyIf(t, name == "shutdown")
			var args []string
			if name == "shutdown" {
				args = []string{"-quiet"} // as above
			}
			program := ourServer(t, "stage6-hardened", args...)
			program.Pipe = true
			res := tester.RunCheck(program, 6, findCheck(t, 6, name))
			require.True(t, res.Passed, "%s", res.Report(true, false))
		})
	}

	lean := []struct {
		name, pkg string
		args      []string
		check     string
		pipe      bool
		hint      string
	}{
		// Its readers fall megabytes behind the flood: the line waits behind them, or the
		// readers are dropped past -max-pending. A relay without flood control passes only
		// if it relays slower than about 512 KB/s, as one starved of CPU may: -quiet spares it
		// a write to the terminal for every line, so that it floods fast on a busy machine
		// too (and under the race detector).
		{"stage5-select/flood", "stage5-select", []string{"-quiet"}, "flood", false, "one client sending as fast as it can buried everyone else"},
		// Stage 6 itself, with its flood control off.
		{"stage6-hardened/flood/max-rate=0", "stage6-hardened", []string{"-max-rate", "0", "-quiet"}, "flood", false, "one client sending as fast as it can buried everyone else"},
		// It prints each message from its loop.
		{"stage5-select/paused-output", "stage5-select", nil, "paused-output", false, "your server stopped relaying while its standard output was not being read"},
		{"stage5-select/paused-output/pipe", "stage5-select", nil, "paused-output", true, "your server stopped relaying while its standard output was not being read"},
		// It exits at once: what the kernel does not hold for the reader is lost. -quiet, so
		// that a tester slow to read its output (the race detector) does not stop its relay
		// first, which is the paused-output lesson, not this one.
		{"stage5-select/shutdown", "stage5-select", []string{"-quiet"}, "shutdown", false, "not every line queued for a client before SIGTERM reached it"},
	}
	for _, tc := range lean {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			program := ourServer(t, tc.pkg, tc.args...)
			program.Pipe = tc.pipe
			failsCheck(t, program, 6, tc.check, tc.hint)
		})
	}
}
