//go:build linux || darwin

package harness

import "testing"

// Stage 6's own lessons are proven by the real-room and flood tests (room*_test.go), which run
// against it; this file holds what is stage 6's alone and fits no room.

// The clients get the bytes as they came, but the log escapes every byte that is not
// printable UTF-8 as \xNN, so that a client cannot drive the instructor's terminal with escape
// sequences, nor hide anything from the log.
func TestStage6LogEscapes(t *testing.T) {
	t.Parallel()
	expectBinaryRelayed(t, stage6,
		`Server: received from client: nul\x00 bad utf-8 \xff\xfe esc \x1b[2J tab`+"\t"+`del\x7f é`)
}
