//go:build linux || darwin

package main

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPausedServer stops a server with SIGSTOP past its lease, while its users amy and zed are
// in the room. Someone else takes the name zed on another server meanwhile, and bob sends that
// new zed a /msg. When the paused server resumes, its zed has typed a line and a /msg: not a
// byte of them goes to another server (the server does not speak for a name it has not
// confirmed for longer than the lease allows), nor would the others deliver it (it does not
// come from the holder); the old zed is told that someone else has the name, and gets nothing
// meant for the new one (a /msg goes to the holder's server alone), nor the /msg sent to it
// while its server was stopped (the server that wakes checks its lease first). amy, on the
// paused server, sees the winner at once, and /who lists the room in the same order on both
// servers.
func TestPausedServer(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	paused, other := startServer(t, "-nats", ns.ClientURL(), "-lease", testLease.String()),
		startServer(t, "-nats", ns.ClientURL(), "-lease", testLease.String())
	bob := join(t, other, "bob", "* The room is empty")
	knows([]*process{paused}, "bob")
	amy := join(t, paused, "amy", "* The room contains: bob")
	bob.expect("* amy has entered the room")
	oldZed := join(t, paused, "zed", "* The room contains: bob, amy")
	amy.expect("* zed has entered the room")
	bob.expect("* zed has entered the room")

	// A NATS client of its own watches everything said on the room's subjects.
	spy, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	said := make(chan *nats.Msg, 1024)
	if _, err := spy.ChanSubscribe("chat.room.>", said); err != nil {
		t.Fatal(err)
	}
	spy.Flush()

	_, _, kv := openNames(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	oldZedEntry, err := kv.Get(ctx, "zed")
	if err != nil {
		t.Fatal(err)
	}
	bobEntry, err := kv.Get(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}

	paused.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { paused.cmd.Process.Signal(syscall.SIGCONT) })
	bob.expectAnyOrder("* amy has left the room", "* zed has left the room") // their leases ran out
	// A /msg from bob for the zed he knew, as a server that has not seen zed leave would send
	// it: it waits in the paused server's socket, and must not reach the old zed when the
	// server wakes, its lease no longer known to be good.
	forOld := nats.NewMsg(subjectMsg + "." + string(oldZedEntry.Value()) + ".zed")
	forOld.Header.Set(headerName, "bob")
	forOld.Header.Set(headerServer, string(bobEntry.Value()))
	forOld.Header.Set(headerSince, strconv.FormatUint(bobEntry.Revision(), 10))
	forOld.Header.Set(headerFor, strconv.FormatUint(oldZedEntry.Revision(), 10))
	forOld.Data = []byte("[bob -> you] for the old zed\n")
	if err := spy.PublishMsg(forOld); err != nil {
		t.Fatal(err)
	}
	newZed := join(t, other, "zed", "* The room contains: bob")
	bob.expect("* zed has entered the room")
	bob.send("/msg zed for the zed who holds the name")
	newZed.expect("[bob -> you] for the zed who holds the name")
	oldZed.send("stale 0", "/msg bob stale 1") // waiting in the paused server's socket
	paused.cmd.Process.Signal(syscall.SIGCONT)

	oldZed.expect("Server: someone on another server has your name now, disconnecting you")
	if line, err := oldZed.line(patience); err == nil {
		t.Fatalf("the old zed got %q after its goodbye, want the connection closed", line)
	}
	// amy, on the same server, may hear the old zed's line before her server learns that the
	// name moved: nothing of it goes to the other servers.
	for _, want := range []string{"* zed has left the room", "* zed has entered the room"} {
		if got := amy.nextBesides("[zed] stale 0"); got != want {
			t.Fatalf("amy got %q, want %q", got, want)
		}
	}
	bob.expect("* amy has entered the room") // her server claimed her name again
	newZed.expect("* amy has entered the room")
	// amy's server learns that her name is hers again a moment after the others see it.
	for deadline := time.Now().Add(patience); ; <-time.After(50 * time.Millisecond) {
		amy.send("/who")
		if present, _ := amy.line(patience); present == "* Present: bob, zed, amy" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("amy got %q, want the room in the order its names were granted", present)
		}
	}
	bob.send("/who")
	bob.expect("* Present: bob, zed, amy")
	amy.send("/msg zed from the resumed server")
	newZed.expect("[amy -> you] from the resumed server")
	newZed.send("the new zed speaks")
	amy.expect("[zed] the new zed speaks")
	bob.expect("[zed] the new zed speaks")
	bob.silent()
	newZed.silent()
	spy.Flush()
	newZedServer := holderOf(t, ns.ClientURL(), "zed")
	for len(said) > 0 {
		m := <-said
		if strings.Contains(string(m.Data), "stale") {
			t.Fatalf("the paused server published %q on %s for a name it no longer held", m.Data, m.Subject)
		}
		if strings.HasPrefix(m.Subject, subjectMsg+".") && m.Subject != subjectMsg+"."+newZedServer+".zed" &&
			string(m.Data) != string(forOld.Data) {
			t.Fatalf("a /msg to zed went out on %s, want the subject of zed's server alone", m.Subject)
		}
	}
}

// holderOf returns the ID of the server that holds name in the registry, as its entry says.
func holderOf(t *testing.T, url, name string) string {
	t.Helper()
	_, _, kv := openNames(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	entry, err := kv.Get(ctx, name)
	if err != nil {
		t.Fatalf("%s's entry: %v", name, err)
	}
	return string(entry.Value())
}

// TestForgedSender publishes lines on the room's subjects from a NATS client of the test's
// own, as a server that lost a name, or any other client, could: only what carries the name's
// holder (its server and the revision that gave it the name) reaches anyone.
func TestForgedSender(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	bob := join(t, s[1], "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")

	nc, _, kv := openNames(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	entry, err := kv.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	server, since := string(entry.Value()), entry.Revision()
	say := func(server string, since uint64, line string) {
		m := nats.NewMsg(subjectSay)
		m.Header.Set(headerName, "alice")
		m.Header.Set(headerServer, server)
		m.Header.Set(headerSince, strconv.FormatUint(since, 10))
		m.Data = []byte("[alice] " + line + "\n")
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	say("SOMEOTHERSERVER", since, "from another server")
	say(server, since-1, "from an older holder of the name")
	say(server, since, "from the holder")
	bob.expect("[alice] from the holder")
	bob.silent()
}

// TestLeaseKept watches the registry for two leases while zed, in the room, says nothing:
// zed's server's lease is rewritten before the server would stop trusting it (lease − margin
// after the start of the last refresh), and never runs out. Then zed speaks, and is heard
// at once.
func TestLeaseKept(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL(), "-lease", testLease.String())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	zed := join(t, s[1], "zed", "* The room contains: alice")
	alice.expect("* zed has entered the room")

	_, _, kv := openNames(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	entry, err := kv.Get(ctx, "zed")
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := kv.Watch(context.Background(), serverKeys+string(entry.Value()))
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Stop()
	trusted := testLease - leaseMargin(testLease)
	var last time.Time
	for end := time.After(2 * testLease); ; {
		var entry jetstream.KeyValueEntry
		select {
		case entry = <-watcher.Updates():
		case <-end:
			if gap := time.Since(last); gap > trusted {
				t.Fatalf("zed's server's lease was last rewritten %v ago, want at most lease − margin, %v",
					gap.Round(time.Millisecond), trusted)
			}
			zed.send("still mine")
			start := time.Now()
			alice.expect("[zed] still mine")
			if took := time.Since(start); took > testLease/2 {
				t.Errorf("zed's line took %v, want it at once", took.Round(time.Millisecond))
			}
			return
		}
		switch {
		case entry == nil: // the end of what was there before
		case entry.Operation() != jetstream.KeyValuePut:
			t.Fatalf("zed's server's lease ran out (%v) while zed was in the room", entry.Operation())
		case !last.IsZero() && entry.Created().Sub(last) > trusted:
			t.Fatalf("zed's server's lease was rewritten %v after the last time, want at most lease − margin, %v",
				entry.Created().Sub(last).Round(time.Millisecond), trusted)
		default:
			last = entry.Created()
		}
	}
}
