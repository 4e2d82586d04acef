//go:build linux || darwin

package main

import (
	"bytes"
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

// TestHubStopped has eight users of the second server flood hal, on the hub, with /msg, then
// stops the hub (SIGSTOP: its laptop's lid closed) while they go on. The loop must never wait
// for NATS: bea's lines to bob, on the same server, each arrive within a second all along,
// while the socket to NATS fills, then the outbox; the server says that NATS is not keeping
// up, in its log and to its users; and a newcomer who asks for a name while the hub is stopped
// is told to try again, soon. (The /msg lines go to NATS alone: bob, who hears bea, has no
// backlog of theirs to wait behind.)
func TestHubStopped(t *testing.T) {
	t.Parallel()
	const promptly = time.Second
	hub := startServer(t, "-nats-listen", "127.0.0.1:0")
	secret, port := hubSecret(t, hub)
	second := startServer(t, "-nats", fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port),
		"-max-rate", "0", "-quiet")
	join(t, hub, "hal", "* The room is empty")
	knows([]*process{second}, "hal")
	bea := join(t, second, "bea", "* The room contains: hal")
	bob := join(t, second, "bob", "* The room contains: hal, bea")
	bea.expect("* bob has entered the room")
	heard := make(chan string, 64)
	go readAll(bob, func(line string) { heard <- line })
	go readAll(bea, func(string) {})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	for i := range 8 {
		typist := arrive(t, second, "typist")
		typist.send(fmt.Sprintf("typist%d", i))
		go readAll(typist, func(string) {})
		go func() {
			lines := []byte(strings.Repeat("/msg hal "+strings.Repeat("x", 1000)+"\n", 16))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := typist.conn.Write(lines); err != nil {
					return
				}
			}
		}()
	}

	hub.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { hub.cmd.Process.Signal(syscall.SIGCONT) })
	// bea talks to bob ten times a second from now on, through the stall, until five lines
	// after the server has said that NATS is not keeping up. Each must reach bob within a second.
	full := regexp.MustCompile(`^Server: NATS is not keeping up: lines for the other servers are dropped$`)
	notice := "* The other servers are not keeping up: only the users here hear you for now"
	pace := time.NewTicker(100 * time.Millisecond)
	defer pace.Stop()
	toldBob := false
	for i, told := 0, -1; told < 0 || i < told+5; i++ {
		if i > 100 {
			t.Fatalf("after 10 s the server had not said that NATS was not keeping up; it printed:\n%s",
				strings.Join(second.lines(), "\n"))
		}
		if told < 0 && slices.ContainsFunc(second.lines(), full.MatchString) {
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
			toldBob = toldBob || line == notice
			if line != want && !strings.HasPrefix(line, "* ") {
				t.Fatalf("bob got %q, want %q", line, want)
			}
		}
	}
	if !toldBob {
		t.Fatalf("bob was not told %q", notice)
	}
	// A newcomer's name cannot be checked: it is told so, without waiting for the hub.
	newcomer := arrive(t, second, "nina")
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
	o := &outbox{todoList: newTodoList(), caughtUp: func() { caughtUp.Add(1) }}
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

// TestFromNATSLimit hands listen, the goroutine between NATS and the loop, more of the room's
// lines than fromNATS while the loop takes none: past the bound they are dropped, and the log
// says so once; once the loop has taken what waited, lines are handed on again.
func TestFromNATSLimit(t *testing.T) {
	t.Parallel()
	s := &server{out: &bytes.Buffer{}}
	s.cluster.news = newTodoList()
	messages := make(chan *nats.Msg)
	go s.listen(messages)
	line := []byte(strings.Repeat("x", 1000) + "\n")
	for range 2 * fromNATS / len(line) {
		messages <- &nats.Msg{Subject: subjectSay, Data: line}
	}
	// Once listen takes this one, it has handled the one before. Larger than the whole bound,
	// it is dropped whenever listen handles it, before the loop takes what waits or after:
	// a line that fits could be handed on after, and be counted as waiting.
	messages <- &nats.Msg{Subject: subjectSay, Data: make([]byte, fromNATS+1)}
	waiting := s.cluster.news.take()
	if want := fromNATS/len(line) + 1; len(waiting) != want { // the lines that fit, and the log line
		t.Fatalf("listen handed the loop %d things to do, want %d", len(waiting), want)
	}
	for _, do := range waiting {
		do() // out of the room: the lines go nowhere, and the log says why they were lost
	}
	if s.cluster.heard.Load() != 0 {
		t.Fatalf("%d bytes still counted as waiting for the loop, want 0", s.cluster.heard.Load())
	}
	if want := "Server: this server is behind the room: lines from other servers are dropped\n"; s.out.String() != want {
		t.Fatalf("the log says %q, want %q", s.out, want)
	}
	for range 3 { // the third: listen has handled the second
		messages <- &nats.Msg{Subject: subjectSay, Data: line}
	}
	if got := len(s.cluster.news.take()); got < 2 {
		t.Fatalf("after the loop caught up, listen handed it %d lines, want 2 or more", got)
	}
}
