//go:build linux || darwin

package main

import (
	"crypto/rand"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// startNATSWithSecret starts a NATS server with JetStream on 127.0.0.1:port (-1: any free
// one) that asks for secret, as the hub does, and stops it at the end of the test.
func startNATSWithSecret(t *testing.T, port int, secret string) *natsserver.Server {
	t.Helper()
	return startNATSOptions(t, &natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, Authorization: secret})
}

// refuser is a NATS server's check of its clients that refuses everyone, and counts them.
type refuser struct{ refused atomic.Int32 }

func (r *refuser) Check(natsserver.ClientAuthentication) bool {
	r.refused.Add(1)
	return false
}

// waitFor waits, with a deadline, until done says so.
func waitFor(t *testing.T, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", patience, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHubRestartedWithAnotherSecret restarts the room's NATS on its port with another secret,
// then with the first one again: NATS refuses the chat servers again and again meanwhile, and
// they keep trying, say once why they wait, and rejoin by themselves, so that users on two
// servers hear each other again.
func TestHubRestartedWithAnotherSecret(t *testing.T) {
	t.Parallel()
	secret := rand.Text()
	ns := startNATSWithSecret(t, -1, secret)
	port := natsPort(ns)
	url := fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port)
	s := startServers(t, 2, url)
	ann := join(t, s[0], "ann", "* The room is empty")
	knows(s[1:], "ann")

	ns.Shutdown()
	for _, server := range s {
		server.waitLog(`^Server: lost NATS`)
	}
	wrong := &refuser{}
	other := startNATSOptions(t, &natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		CustomClientAuthentication: wrong})
	// Three refusals each: the NATS client gives up after two, unless told otherwise.
	waitFor(t, "six refusals", func() bool { return wrong.refused.Load() >= 6 })
	for _, server := range s {
		server.waitLog(`^Server: NATS was restarted with another secret; ` +
			`trying again every second$`)
	}
	other.Shutdown()

	startNATSWithSecret(t, port, secret)
	for _, server := range s {
		server.waitLog(`^Server: back in the room through NATS at 127.0.0.1:\d+$`)
	}
	ann.expect("* The room is split: only the users on this server hear you, until it rejoins",
		"* The room is whole again (what was said on the other side meanwhile is lost)",
		"* NATS lost the room's names: this server claimed yours again") // a NATS afresh
	for _, server := range s {
		server.waitLog(`^Server: NATS lost the room's names`)
	}
	// The second server may have listed the new bucket before the first claimed ann in it.
	if slices.Contains(s[1].lines(), "Server: ann left (its server stopped answering)") {
		s[1].waitLog(`^Server: ann joined, on another server$`)
	}
	bob := join(t, s[1], "bob", "* The room contains: ann")
	ann.expect("* bob has entered the room")
	bob.send("heard?")
	ann.expect("[bob] heard?")
}

// TestJoinerWaits starts a chat server before its NATS, then gives it a NATS that refuses its
// secret, then one that takes it: it says in one line each time why it waits, serves its own
// users meanwhile, and joins the room by itself once NATS takes it.
func TestJoinerWaits(t *testing.T) {
	t.Parallel()
	probe := startNATS(t, -1)
	port := natsPort(probe)
	probe.Shutdown() // a port nobody listens on, for now
	secret := rand.Text()
	s := startServerWaiting(t, "-nats", fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port))
	s.waitLog(`^Server: NATS does not answer; trying again every second$`)
	amy := arrive(t, s, "amy")
	amy.send("amy")
	amy.expect("* Sorry, the room's names cannot be checked right now: try again.")

	wrong := startNATSWithSecret(t, port, rand.Text())
	s.waitLog(`^Server: NATS refuses the secret in its URL; trying again every second$`)
	wrong.Shutdown()

	startNATSWithSecret(t, port, secret)
	s.waitLog(`^Server: in the room through NATS at`)
	join(t, s, "amy", "* The room is empty")
}

// TestFastReconnect cuts both servers off NATS, which takes them back at once, three times:
// each reports the split, then the room whole again, in that order, and the room is whole.
// Lines flow again as soon as NATS is back, before the names' bucket has listed the room.
func TestFastReconnect(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL())
	alice := join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	bob := join(t, s[1], "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")
	knows(s[:1], "bob")

	for round := range 3 {
		connz, err := ns.Connz(&natsserver.ConnzOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range connz.Conns {
			if c.Name == "stage9-durable" {
				ns.DisconnectClientByID(c.Cid)
			}
		}
		split := "* The room is split: only the users on this server hear you, until it rejoins"
		whole := "* The room is whole again (what was said on the other side meanwhile is lost)"
		// Who was out of reach is back with the room, without a word: nobody left.
		alice.expect(split, whole)
		bob.expect(split, whole)
		alice.send(fmt.Sprintf("whole again, round %d", round))
		bob.expect(fmt.Sprintf("[alice] whole again, round %d", round))
	}
}

// TestNoJetStream: a NATS without JetStream cannot keep the room's names. The server says so
// in one line, once, though it tries again every second.
func TestNoJetStream(t *testing.T) {
	t.Parallel()
	ns := startNATSOptions(t, &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	s := startServerWaiting(t, "-nats", ns.ClientURL())
	want := fmt.Sprintf("Server: NATS at 127.0.0.1:%d has JetStream off (nats-server -js)", natsPort(ns))
	s.waitLog("^" + regexp.QuoteMeta(want) + "$")
	// Three more tries, at least, and not a word more.
	for deadline := time.Now().Add(3 * retryEvery); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
	}
	if said := slices.Index(s.lines(), want); len(s.lines()) != said+1 {
		t.Fatalf("after %q the server printed more:\n%s", want, strings.Join(s.lines()[said+1:], "\n"))
	}
}
