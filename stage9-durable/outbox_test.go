//go:build linux || darwin

package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestHubStopped floods the room from eight users on the second server, then stops the hub
// (SIGSTOP: its laptop's lid closed) while they go on. The loop must never wait for NATS:
// bea's lines to bob, on the same server, each arrive within a second all along, while the
// socket to NATS fills and until the server says that NATS is not keeping up, or is lost; and
// a newcomer who asks for a name while the hub is stopped is told to try again, soon.
func TestHubStopped(t *testing.T) {
	t.Parallel()
	const promptly = time.Second
	hub := startServer(t, "-nats-listen", "127.0.0.1:0")
	secret, port := hubSecret(t, hub)
	// Eight typists at 256 KiB/s each: 2 MiB/s fills the socket to a stopped NATS and the
	// outbox within seconds, and bob, who reads it all, keeps up (under -race too), so that
	// bea's lines do not wait behind a backlog of his.
	second := startServer(t, "-nats", fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port),
		"-max-rate", "262144", "-max-burst", "262144", "-max-pending", "64000000")
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
	// bea talks to bob ten times a second from now on, through the stall (the socket to NATS
	// full, the outbox filling) until five lines after the server has said that NATS is not
	// keeping up, or is lost (on a busy machine that may take a while; at worst, the NATS
	// client's pings find out within 30 s). Each line must reach bob within a second.
	stalled := regexp.MustCompile(`^Server: (NATS is not keeping up|lost NATS)`)
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	for i, told := 0, -1; told < 0 || i < told+5; i++ {
		if i > 300 {
			t.Fatalf("after 30 s the server had said neither that NATS was not keeping up nor "+
				"that it was lost; it printed:\n%s", strings.Join(second.lines(), "\n"))
		}
		if told < 0 && slices.ContainsFunc(second.lines(), stalled.MatchString) {
			told = i
		}
		<-pace.C
		want := fmt.Sprintf("[bea] line %d while the hub is stopped", i)
		bea.send(strings.TrimPrefix(want, "[bea] "))
		for line := ""; line != want; {
			select {
			case line = <-heard:
			case <-time.After(promptly):
				t.Fatalf("bob did not get %q within %v", want, promptly)
			}
			if line != want && !strings.HasPrefix(line, "* ") {
				t.Fatalf("bob got %q, want %q", line, want)
			}
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

// TestOutboxLimit fills the outbox while nothing takes from it: past outboxLimit a message is
// refused (the loop drops it, and says so); once the queue has emptied, it says that it caught
// up, once, and takes messages again.
func TestOutboxLimit(t *testing.T) {
	t.Parallel()
	var caughtUp atomic.Int32
	o := &outbox{queue: newQueue(), caughtUp: func() { caughtUp.Add(1) }}
	line := []byte(strings.Repeat("x", 1000))
	queued := 0
	for ; o.push(&nats.Msg{Subject: subjectSay, Data: line}); queued++ {
	}
	if queued != outboxLimit/len(line) {
		t.Fatalf("the outbox took %d lines of %d bytes, want %d", queued, len(line), outboxLimit/len(line))
	}
	go o.run() // no NATS: it forgets them, as out of the room
	waitFor(t, "the outbox to say it caught up", func() bool { return caughtUp.Load() == 1 })
	if !o.push(&nats.Msg{Subject: subjectSay, Data: line}) {
		t.Fatal("an empty outbox refused a line")
	}
	waitFor(t, "the outbox to empty", func() bool { return o.bytes.Load() == 0 })
	if caughtUp.Load() != 1 {
		t.Fatalf("the outbox said %d times that it caught up, want once", caughtUp.Load())
	}
}
