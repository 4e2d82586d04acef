//go:build linux || darwin

package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Our stage 7 passes every Budget Chat check, and the observations see our additions: a taken
// name is rejected, /msg is private and /who lists everyone.
func TestStage7Checks(t *testing.T) {
	root, err := Root()
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(root, "stage7-identity")); err != nil {
		t.Skip("no stage7-identity in this checkout yet")
	}
	notes := map[string]string{}
	for _, check := range StageChecks(6) {
		t.Run(check.Name, func(t *testing.T) {
			for key, value := range runCheck(t, 6, check.Name, "stage7-identity").Notes {
				notes[key] = value
			}
		})
	}
	require.Equal(t, "refused", notes["taken name"])
	require.Equal(t, "private", notes["msg"])
	require.Equal(t, "listed", notes["who"])
}
