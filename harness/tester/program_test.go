//go:build linux || darwin

package tester

import (
	"strconv"
	"testing"
)

// FreePort gives ports that a server without SO_REUSEADDR can listen on, not the same one
// twice in 200, and none that the kernel could give a socket bound to port 0 in the
// meantime.
func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[port] {
			t.Fatalf("port %d handed out twice", port)
		}
		seen[port] = true
		if port >= 32768 {
			t.Fatalf("port %d is among those the kernel hands out by itself", port)
		}
		l, err := withoutReuse.Listen(t.Context(), "tcp4", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Fatalf("port %d: %v", port, err)
		}
		l.Close()
	}
}
