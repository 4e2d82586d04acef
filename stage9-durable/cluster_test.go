//go:build linux || darwin

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestOneRoom plays Budget Chat with three users on three servers: presence, arrivals, tags,
// no echo, /msg and /who across servers, and a departure.
func TestOneRoom(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 3, ns.ClientURL())

	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	bob := join(t, s[1], "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")
	knows([]*process{s[0], s[2]}, "bob")
	carol := join(t, s[2], "carol", "* The room contains: alice, bob")
	alice.expect("* carol has entered the room")
	bob.expect("* carol has entered the room")

	alice.send("Hello from server 1")
	bob.expect("[alice] Hello from server 1")
	carol.expect("[alice] Hello from server 1")

	carol.send("/msg alice psst", "/msg zed hi", "/who")
	alice.expect("[carol -> you] psst")
	carol.expect("* Nobody called zed is here.", "* Present: alice, bob, carol")

	bob.send("/who")
	bob.expect("* Present: alice, bob, carol")

	bob.leave()
	alice.expect("* bob has left the room")
	carol.expect("* bob has left the room")
	alice.silent() // never her own line back, nor bob's /who, nor carol's /msg to zed
	carol.silent()
}

// TestPerSenderOrder has two users on two servers say a few hundred lines each, in writes of
// several lines, while listeners on all three servers check that every line of each sender
// arrives, once, in the order it was sent.
func TestPerSenderOrder(t *testing.T) {
	t.Parallel()
	const lines = 300
	ns := startNATS(t, -1)
	s := startServers(t, 3, ns.ClientURL())

	var users []*user
	for i, name := range []string{"ann", "ben", "cat", "dan", "eve"} {
		presence := "* The room is empty"
		if i > 0 {
			presence = "* The room contains: " + strings.Join([]string{"ann", "ben", "cat", "dan", "eve"}[:i], ", ")
		}
		u := join(t, s[i%3], name, presence)
		for _, other := range users {
			other.expect("* " + name + " has entered the room")
		}
		others := []*process{}
		for j := range s {
			if j != i%3 {
				others = append(others, s[j])
			}
		}
		knows(others, name)
		users = append(users, u)
	}
	senders := users[:2] // ann on server 1, ben on server 2
	for _, sender := range senders {
		go func() {
			for i := 0; i < lines; i += 10 { // ten lines a write
				var batch []string
				for j := i; j < i+10; j++ {
					batch = append(batch, fmt.Sprintf("%s line %d", sender.name, j))
				}
				sender.conn.Write([]byte(strings.Join(batch, "\n") + "\n"))
			}
		}()
	}
	for _, u := range users {
		next := map[string]int{}
		want := lines * len(senders)
		if u == senders[0] || u == senders[1] {
			want = lines // the other sender's lines only
		}
		for got := 0; got < want; got++ {
			line, err := u.line(patience)
			if err != nil {
				t.Fatalf("%s got %d of %d lines: %v", u.name, got, want, err)
			}
			var sender, name string
			var n int
			if _, err := fmt.Sscanf(line, "[%s %s line %d", &sender, &name, &n); err != nil {
				t.Fatalf("%s got %q, not a line of the senders", u.name, line)
			}
			if name == u.name {
				t.Fatalf("%s got its own line back: %q", u.name, line)
			}
			if want := fmt.Sprintf("[%s] %[1]s line %d", name, next[name]); line != want {
				t.Fatalf("%s got %q, want %q", u.name, line, want)
			}
			next[name]++
		}
	}
	for _, u := range users {
		u.silent()
	}
}

// TestOneWinnerPerName asks two servers for the same name at the same instant, a hundred
// times: exactly one of the two users gets it each time.
func TestOneWinnerPerName(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL())
	for round := range 100 {
		name := fmt.Sprintf("round%d", round)
		first, second := arrive(t, s[0], name), arrive(t, s[1], name)
		var wg sync.WaitGroup
		answers := make([]string, 2)
		for i, u := range []*user{first, second} {
			wg.Go(func() {
				u.conn.Write([]byte(name + "\n"))
				answers[i], _ = u.line(patience)
			})
		}
		wg.Wait()
		won, winner := 0, 0
		for i, answer := range answers {
			switch {
			// The room is empty, or not yet for the other server, whose watcher may
			// still be on its way to the last round's departure.
			case answer == "* The room is empty" || strings.HasPrefix(answer, "* The room contains: round"):
				won, winner = won+1, i
			case answer == "* Sorry, the name "+name+" is taken.":
			default:
				t.Fatalf("round %d: got %q, want the room or a refusal", round, answer)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of the two users got the name %s, want exactly 1", round, won, name)
		}
		first.leave()
		second.leave()
		// The winner has left, and the room is empty again. (The other server may not even
		// have seen the name taken: its watcher shows the bucket's latest entry for a name,
		// and a visit this short may show only as its end.)
		s[winner].waitLog(`^Server: ` + name + ` left$`)
	}
}

// TestKillNine kills a server without a word: the others announce its users' departure, and
// their names are free again, within the time the README promises (the lease, plus the slack
// of a busy machine).
func TestKillNine(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 3, ns.ClientURL(), "-lease", testLease.String())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	carol := join(t, s[2], "carol", "* The room contains: alice")
	alice.expect("* carol has entered the room")
	knows(s[1:2], "carol")
	_ = carol

	s[2].kill9()
	killed := time.Now()
	alice.expect("* carol has left the room")
	if took := time.Since(killed); took > 2*testLease {
		t.Fatalf("carol's departure took %v, want at most %v", took.Round(time.Millisecond), 2*testLease)
	}
	for _, server := range s[:2] { // a server that has not heard yet still says "taken"
		server.waitLog(`^Server: carol left \(its server stopped answering\)$`)
	}
	join(t, s[1], "carol", "* The room contains: alice")
	alice.expect("* carol has entered the room")
}

// TestSplitRoom stops NATS: each server keeps its users talking among themselves, tells them
// the room is split, and rejoins by itself when NATS is back, without replaying the split; the
// new NATS knows nothing of the room, and the users are told that their names were claimed
// again.
func TestSplitRoom(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	port := natsPort(ns)
	s := startServers(t, 2, ns.ClientURL())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	amy := join(t, s[0], "amy", "* The room contains: alice")
	alice.expect("* amy has entered the room")
	knows(s[1:], "amy")
	bob := join(t, s[1], "bob", "* The room contains: alice, amy")
	alice.expect("* bob has entered the room")
	amy.expect("* bob has entered the room")

	ns.Shutdown()
	split := "* The room is split: only the users on this server hear you, until it rejoins"
	alice.expect(split)
	amy.expect(split)
	bob.expect(split)
	s[0].waitLog(`^Server: lost NATS at .*: the room is split$`)
	alice.send("only amy hears this")
	amy.expect("[alice] only amy hears this")
	bob.send("/who")
	bob.expect("* Present: bob")
	bob.silent()

	startNATS(t, port) // a new NATS on the same port: it knows nothing of the room
	whole := "* The room is whole again (what was said on the other side meanwhile is lost)"
	reclaimed := "* NATS lost the room's names: this server claimed yours again"
	alice.expect(whole, reclaimed)
	amy.expect(whole, reclaimed)
	bob.expect(whole, reclaimed)
	s[0].waitLog(`^Server: back in the room through NATS at `)
	for _, server := range s {
		server.waitLog(`^Server: NATS lost the room's names: made them again, and claimed ours$`)
	}
	// A server may list the new bucket before the other has claimed its names in it: its
	// users see those leave, and come back.
	var flaps []string
	for _, name := range []string{"alice", "amy", "bob"} {
		flaps = append(flaps, "* "+name+" has left the room", "* "+name+" has entered the room")
	}
	// The servers claimed their names again in some order: /who shows it, the same on both.
	present := bob.everyone([]string{"alice", "amy", "bob"}, flaps...)
	if got := alice.everyone([]string{"alice", "amy", "bob"}, flaps...); got != present {
		t.Fatalf("alice got %q, bob %q: want one order", got, present)
	}
	alice.send("is everyone back?")
	if line := bob.nextBesides(flaps...); line != "[alice] is everyone back?" { // not the split's
		t.Fatalf("bob got %q, want alice's line", line)
	}
	if line := amy.nextBesides(flaps...); line != "[alice] is everyone back?" {
		t.Fatalf("amy got %q, want alice's line", line)
	}
	alice.silent()
}

// TestLateServer starts a server after alice has joined and her server has refreshed its
// lease: the newcomer learns of her from the registry, and hears when she leaves.
func TestLateServer(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	first := startServer(t, "-nats", ns.ClientURL(), "-lease", testLease.String())
	alice := join(t, first, "alice", "* The room is empty")

	_, _, kv := openNames(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	created, err := kv.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	lease := serverKeys + string(created.Value())
	refreshed, err := kv.Get(ctx, lease)
	if err != nil {
		t.Fatalf("alice's entry points at no server's lease: %v", err)
	}
	for { // until her server has rewritten its lease once
		if entry, err := kv.Get(ctx, lease); err == nil && entry.Revision() > refreshed.Revision() {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("alice's server's lease was not refreshed within %v", patience)
		case <-time.After(100 * time.Millisecond):
		}
	}

	second := startServer(t, "-nats", ns.ClientURL())
	bob := join(t, second, "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")
	alice.leave()
	bob.expect("* alice has left the room")
	second.waitLog(`^Server: alice left \(on another server\)$`)
}

// TestSecret: the NATS server that the first chat server runs refuses a NATS client without
// its secret, or with a wrong one, so that nobody else on the network reads the room or writes
// to it; a chat server given the URL it printed joins the room, and does not log the secret.
// (A chat server with a wrong secret keeps trying: TestJoinerWaits.)
func TestSecret(t *testing.T) {
	t.Parallel()
	hub := startServer(t, "-nats-listen", "127.0.0.1:0")
	secret, port := hubSecret(t, hub) // readme_test.go
	for _, url := range []string{
		fmt.Sprintf("nats://127.0.0.1:%d", port),
		fmt.Sprintf("nats://WRONG%s@127.0.0.1:%d", secret[5:], port),
	} {
		nc, err := nats.Connect(url, nats.MaxReconnects(0))
		if err == nil {
			nc.Close()
			t.Fatalf("a NATS client connected to the hub with %s, want it refused", url)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("a NATS client with %s: %v, want an authorization violation", url, err)
		}
	}
	url := fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port)
	other := startServer(t, "-nats", url)
	alice := join(t, hub, "alice", "* The room is empty")
	knows([]*process{other}, "alice")
	bob := join(t, other, "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")
	bob.send("with the secret")
	alice.expect("[bob] with the secret")
	for _, line := range other.lines() {
		if strings.Contains(line, secret) {
			t.Errorf("a server that joined logged the secret: %q", line)
		}
	}
}
