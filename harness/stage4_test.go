package harness

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Stage 4 sends every line to every other client, as a line ending in "\r\n", and not back to
// its sender, also after a client leaves or vanishes with a reset, long lines whole, and goes
// on after bytes that are not text: the checks "broadcast", "leave", "reset", "whole-lines"
// and "not-text".
func TestStage4Broadcast(t *testing.T) {
	t.Parallel()
	res := runCheck(t, 4, "broadcast", "stage4-broadcast")
	require.Equal(t, received("Hello", "Hola"), logOnly(res.Output, received("Hello", "Hola")))
	require.Equal(t, `\r\n`, res.Notes["ending"])
	res = runCheck(t, 4, "leave", "stage4-broadcast")
	require.Contains(t, res.Output, "Server: client disconnected")
	for _, check := range []string{"reset", "whole-lines", "not-text"} {
		runCheck(t, 4, check, "stage4-broadcast")
	}
}

// Broadcasting changed nothing about the loop: it still spins while idle.
func TestStage4BurnsCPUWhileIdle(t *testing.T) {
	checkBurnsCPU(t, 4, "stage4-broadcast")
}

func TestStage4ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage4-broadcast")
}
