//go:build linux || darwin

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tests of what stage 9 adds to stage 8: names that survive a lost bucket, a paused
// server, a lost NATS node, and cost the same to keep for 1,000 users as for one.

// openNames connects the test to NATS at url and opens the names' bucket.
func openNames(t *testing.T, url string) (*nats.Conn, jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	var kv jetstream.KeyValue
	askCluster(t, "the names' bucket", func(ctx context.Context) (err error) {
		kv, err = js.KeyValue(ctx, namesBucket)
		return err
	})
	return nc, js, kv
}

// TestLostBucket deletes the names' bucket under a room that is talking, as a NATS restarted
// without its memory would lose it: each server makes it again, claims its users' names
// again, and tells them; the room goes on, and a taken name is refused again.
func TestLostBucket(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	bob := join(t, s[1], "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")

	_, js, _ := openNames(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := js.DeleteKeyValue(ctx, namesBucket); err != nil {
		t.Fatal(err)
	}
	lost := "* NATS lost the room's names: this server claimed yours again"
	alice.expect(lost)
	bob.expect(lost)
	for _, server := range s {
		server.waitLog(`^Server: NATS lost the room's names: made them again, and claimed ours$`)
	}
	_, _, kv := openNames(t, ns.ClientURL())
	for _, name := range []string{"alice", "bob"} {
		if _, err := kv.Get(ctx, name); err != nil {
			t.Fatalf("%s's entry in the new bucket: %v", name, err)
		}
	}
	u := arrive(t, s[1], "alice")
	u.send("alice")
	u.expect("* Sorry, the name alice is taken.")
	alice.send("still here")
	// A server may list the new bucket before the other has claimed its names in it: its
	// users then see them leave, and come back.
	for {
		line, err := bob.line(patience)
		if err != nil {
			t.Fatalf("bob waited for alice's line: %v", err)
		}
		if line == "[alice] still here" {
			break
		}
		if line != "* alice has left the room" && line != "* alice has entered the room" {
			t.Fatalf("bob got %q, want alice's line", line)
		}
	}
}

// TestRefreshCost counts the writes to the names' bucket over a lease with one user in the
// room, then with 1,000 on the same server: keeping 1,000 names costs no more writes than
// keeping one, since a server rewrites its own lease, not each name.
func TestRefreshCost(t *testing.T) {
	t.Parallel()
	const users = 1000
	ns := startNATS(t, -1)
	s := startServer(t, "-nats", ns.ClientURL(), "-lease", testLease.String())
	join(t, s, "user0", "* The room is empty")
	_, js, _ := openNames(t, ns.ClientURL())
	writes := func() uint64 { // over a lease
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		stream, err := js.Stream(ctx, "KV_"+namesBucket)
		if err != nil {
			t.Fatal(err)
		}
		before := stream.CachedInfo().State.LastSeq
		<-time.After(testLease)
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq - before
	}
	one := writes()
	for i := 1; i < users; i++ {
		u := arrive(t, s, "")
		u.send(fmt.Sprintf("user%d", i))
		if line, err := u.line(patience); err != nil || !strings.HasPrefix(line, "* The room contains: user0") {
			t.Fatalf("user%d got %q (%v), want the room", i, line, err)
		}
	}
	many := writes()
	t.Logf("writes over a lease of %v: %d with one user, %d with %d", testLease, one, many, users)
	if many > one+1 {
		t.Fatalf("%d users cost %d writes over a lease, one user %d: want no more", users, many, one)
	}
}

// TestMsgForHolder sends alice /msg from a NATS client of the test's own, each from bob as
// the registry shows him, one for an older holder of the name alice, one for the holder:
// alice's server, which checks, hands her the second only.
func TestMsgForHolder(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	join(t, s[1], "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")

	nc, _, kv := openNames(t, ns.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	aliceEntry, err := kv.Get(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bobEntry, err := kv.Get(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	msg := func(toSince uint64, text string) {
		m := nats.NewMsg(subjectMsg + "." + string(aliceEntry.Value()) + ".alice")
		m.Header.Set(headerName, "bob")
		m.Header.Set(headerServer, string(bobEntry.Value()))
		m.Header.Set(headerSince, strconv.FormatUint(bobEntry.Revision(), 10))
		m.Header.Set(headerFor, strconv.FormatUint(toSince, 10))
		m.Data = []byte("[bob -> you] " + text + "\n")
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	msg(aliceEntry.Revision()-1, "for an older alice")
	msg(aliceEntry.Revision(), "for you")
	alice.expect("[bob -> you] for you")
	alice.silent()
	s[0].waitLog(`^Server: dropped a /msg for another holder of the name alice$`)
}

// TestThreeCopies starts the room on a NATS cluster of two nodes: the bucket cannot have its
// three copies, and the server says so and waits, rather than settle for one. When a third
// node joins, it gets three.
func TestThreeCopies(t *testing.T) {
	t.Parallel()
	secret := rand.Text()
	nodes, options := startNATSCluster(t, secret, 2)
	url := fmt.Sprintf("nats://%s@%s", secret, nodes[0].Addr())
	hub := startServerWaiting(t, "-nats", url)
	hub.waitLog(`^Server: NATS cannot keep three copies of the room's names yet; trying again$`)
	hub.waitLog(`^Server:   every second \(NATS says: no suitable peers for placement\)$`)
	third := *options[1] // one more node, which joins the other two through their routes
	third.ServerName, third.StoreDir, third.Port, third.Cluster.Port = "n3", t.TempDir(), -1, -1
	startNode(t, &third)
	hub.waitLog(`^Server: in the room through NATS`)
	_, js, _ := openNames(t, url)
	var stream jetstream.Stream
	askCluster(t, "the names' bucket", func(ctx context.Context) (err error) {
		stream, err = js.Stream(ctx, "KV_"+namesBucket)
		return err
	})
	if replicas := stream.CachedInfo().Config.Replicas; replicas != 3 {
		t.Fatalf("the names' bucket has %d copies, want 3", replicas)
	}
	join(t, hub, "alice", "* The room is empty")
}

// TestAheadBound sends the room 65 lines from a holder of the name ghost that the registry
// has never shown: a server keeps aheadPerName of them for ghost's arrival, drops the next and
// says so, and delivers none while ghost has not arrived.
func TestAheadBound(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServer(t, "-nats", ns.ClientURL())
	alice := join(t, s, "alice", "* The room is empty")
	nc, _, _ := openNames(t, ns.ClientURL())
	for i := range aheadPerName + 1 {
		m := nats.NewMsg(subjectSay)
		m.Header.Set(headerName, "ghost")
		m.Header.Set(headerServer, "NOSUCHSERVER")
		m.Header.Set(headerSince, "1000000")
		m.Data = fmt.Appendf(nil, "[ghost] line %d\n", i)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	s.waitLog(`^Server: dropped a line from ghost, whose arrival has not come yet$`)
	alice.silent()
	for _, line := range s.lines() {
		if strings.HasPrefix(line, "Server: dropped") && line != "Server: dropped a line from ghost, whose arrival has not come yet" {
			t.Fatalf("the server logged %q", line)
		}
	}
	if n := strings.Count(strings.Join(s.lines(), "\n"), "Server: dropped"); n != 1 {
		t.Fatalf("the server dropped %d lines, want 1", n)
	}
}
