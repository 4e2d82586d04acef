//go:build linux || darwin

package harness

import (
	"testing"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// Our stage 7 passes every Budget Chat check, and the observations see our additions: a taken
// name is rejected, /msg is private and /who lists everyone.
func TestStage7Checks(t *testing.T) {
	t.Parallel()
	notes := map[string]string{}
	for _, check := range tester.StageChecks(7) {
		t.Run(check.Name, func(t *testing.T) {
			for key, value := range runCheck(t, 7, check.Name, stage7).Notes {
				notes[key] = value
			}
		})
	}
	require.Equal(t, "refused", notes["taken name"])
	require.Equal(t, "private", notes["msg"])
	require.Equal(t, "listed", notes["who"])
}
