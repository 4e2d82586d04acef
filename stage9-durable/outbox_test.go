//go:build linux || darwin

package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHubStopped floods the room from eight users on the second server, then stops the hub
// (SIGSTOP: its laptop's lid closed) while they go on. The loop must never wait for NATS: bea's
// ten lines to bob, on the same server, each arrive within promptly, the server says once that
// NATS is not keeping up (in its log and to its users), and a newcomer who asks for a name
// while the hub is stopped is told to try again, soon.
func TestHubStopped(t *testing.T) {
	t.Parallel()
	const promptly = time.Second
	hub := startServer(t, "-nats-listen", "127.0.0.1:0")
	secret, port := hubSecret(t, hub)
	second := startServer(t, "-nats", fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port),
		"-max-rate", "0", "-max-pending", "64000000")
	watcher := join(t, hub, "hal", "* The room is empty")
	knows([]*process{second}, "hal")
	bea := join(t, second, "bea", "* The room contains: hal")
	bob := join(t, second, "bob", "* The room contains: hal, bea")
	bea.expect("* bob has entered the room")
	_ = watcher

	// bob reads all the time (the flood too), and passes on bea's lines and the notices.
	heard := make(chan string, 64)
	go readAll(bob, func(line string) {
		if strings.HasPrefix(line, "[bea] ") || strings.HasPrefix(line, "* ") {
			heard <- line
		}
	})
	go readAll(bea, func(string) {})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for i := range 8 {
		name := fmt.Sprintf("typist%d", i)
		u := connect(t, second, name)
		u.send(name)
		go readAll(u, func(string) {})
		go func() {
			line := []byte(fmt.Sprintf("%s %s\n", name, strings.Repeat("x", 1000)))
			lines := []byte(strings.Repeat(string(line), 16))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := u.conn.Write(lines); err != nil {
					return
				}
			}
		}()
	}

	hub.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { hub.cmd.Process.Signal(syscall.SIGCONT) })
	second.waitLog(`^Server: NATS is not keeping up`)
	for i := range 10 {
		want := fmt.Sprintf("[bea] line %d while the hub is stopped", i)
		bea.send(strings.TrimPrefix(want, "[bea] "))
		sent := time.Now()
		for {
			var line string
			select {
			case line = <-heard:
			case <-time.After(promptly):
				t.Fatalf("bob did not get %q within %v", want, promptly)
			}
			if line == want {
				break
			}
			if !strings.HasPrefix(line, "* ") {
				t.Fatalf("bob got %q, want %q", line, want)
			}
		}
		if took := time.Since(sent); took > promptly {
			t.Fatalf("bob got %q after %v, want it within %v", want, took, promptly)
		}
	}
	// A newcomer's name cannot be checked: it is told so, without waiting for the hub.
	newcomer := connect(t, second, "nina")
	asked := time.Now()
	newcomer.send("nina")
	newcomer.expect("* Sorry, the room's names cannot be checked right now: try again.")
	// At worst the registry waits for the NATS client, which gives up the connection after
	// writeWithin, or for NATS's answer, answerWithin.
	if limit := writeWithin + answerWithin(defaultLease) + promptly; time.Since(asked) > limit {
		t.Fatalf("nina was told after %v, want within %v", time.Since(asked), limit)
	}
}

// readAll reads u's lines until its connection closes, and hands each to got.
func readAll(u *user, got func(string)) {
	u.conn.SetReadDeadline(time.Time{})
	for {
		line, err := u.reader.ReadString('\n')
		if err != nil {
			return
		}
		got(strings.TrimSuffix(line, "\n"))
	}
}
