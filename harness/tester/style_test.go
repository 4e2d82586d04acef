//go:build linux || darwin

package tester

import "testing"

// The house-style reader tells a relayed line from the server's own, and a relayed line from
// one cut or run into another: a prefix may be anything but bytes a client sent.
func TestHouseStyleRelays(t *testing.T) {
	t.Parallel()
	r := &Run{stage: 4}
	unfinished := "client-1 has not finished this line "
	for _, line := range []string{"Hello", "client-2 sends a whole line", unfinished} {
		r.sentLine(line)
	}
	for _, tc := range []struct {
		text, message, prefix string
		relay                 bool
	}{
		{"Hello", "Hello", "", true},
		{"127.0.0.1:40312: Hello", "Hello", "127.0.0.1:40312: ", true},
		{"[guest-2] client-2 sends a whole line", "client-2 sends a whole line", "[guest-2] ", true},
		// A relay of reads: the unfinished line runs on into the whole one.
		{"127.0.0.1:1: " + unfinished + "127.0.0.1:2: client-2 sends a whole line", "", "", true},
		{"client-2 sends a whole", "", "", true}, // cut
		{"You are 127.0.0.1:40312", "", "", false},
		{"Hello, 127.0.0.1:40312! Say something.", "", "", false}, // a greeting, not a relay
		{"127.0.0.1:40312 disconnected", "", "", false},
	} {
		message, prefix := r.relays(tc.text)
		if message != tc.message || prefix != tc.prefix || r.isRelay(tc.text) != tc.relay {
			t.Errorf("%q: relays %q after %q, a relay: %v; want %q after %q, %v",
				tc.text, message, prefix, r.isRelay(tc.text), tc.message, tc.prefix, tc.relay)
		}
	}
	if got := (&Run{stage: 6}).styled(); got {
		t.Errorf("stage 6 looks past house style; its protocol is the lesson")
	}
}
