package tester

import (
	"net"
	"testing"
	"time"
)

// acceptQueue counts the connections that a listening socket has not accepted yet, the
// count that the checks wait on to reach zero before a client may speak.
func TestAcceptQueue(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The handshakes end in the kernel, without the server: wait for the third.
	deadline := time.Now().Add(5 * time.Second)
	for waiting, _ := acceptQueue(port); waiting < 3; waiting, _ = acceptQueue(port) {
		if time.Now().After(deadline) {
			t.Fatalf("acceptQueue(%d) = %d, want 3 connections waiting", port, waiting)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 {
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if waiting, ok := acceptQueue(port); waiting != 0 || !ok {
		t.Errorf("after three accepts, acceptQueue(%d) = %d, %v; want 0, true", port, waiting, ok)
	}
	l.Close()
	if waiting, ok := acceptQueue(port); ok {
		t.Errorf("with nothing listening, acceptQueue(%d) = %d, true; want ok false", port, waiting)
	}
}
