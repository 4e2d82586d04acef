//go:build linux || darwin

package tester

import (
	"strings"
	"testing"
)

// The table of checks gives each stage its checks, in the order they run (required ones
// first), and stages 8 and 9 none.
func TestStageChecks(t *testing.T) {
	t.Parallel()
	want := map[int]string{
		1: "pieces",
		2: "lines restart second-client",
		3: "clients leave reset idle-cpu",
		4: "broadcast leave reset whole-lines not-text idle-cpu",
		5: "broadcast leave reset whole-lines not-text idle-cpu framing catch-up stalled",
		6: "broadcast flood paused-output shutdown",
		7: "prompt illegal-name presence left not-joined messages long-message reset " +
			"taken-name whole-lines not-text commands",
		8: "",
		9: "",
	}
	for stage, names := range want {
		var got []string
		for _, check := range StageChecks(stage) {
			got = append(got, check.Name)
		}
		if strings.Join(got, " ") != names {
			t.Errorf("stage %d runs %q, want %q", stage, strings.Join(got, " "), names)
		}
	}
}
