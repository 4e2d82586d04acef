//go:build linux || darwin

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATSCluster starts size NATS servers with JetStream on 127.0.0.1, clustered as the
// README's configuration files cluster them: clients and routes alike must give the secret.
// It returns once JetStream has a leader that all of them follow, with each node's options.
func startNATSCluster(t *testing.T, secret string, size int) ([]*natsserver.Server, []*natsserver.Options) {
	t.Helper()
	// Every node must list its routes (JetStream asks for them), so the route ports are
	// chosen first: free ports the kernel gives, closed again just before the nodes take them.
	var routes []*url.URL
	var ports []int
	for range size {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, &url.URL{Scheme: "nats-route", User: url.UserPassword("route", secret), Host: l.Addr().String()})
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	var nodes []*natsserver.Server
	var options []*natsserver.Options
	for i := range size {
		options = append(options, &natsserver.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Authorization: secret,
			Cluster: natsserver.ClusterOpts{Name: "chat", Host: "127.0.0.1", Port: ports[i],
				Username: "route", Password: secret},
			Routes: routes,
		})
		nodes = append(nodes, startNode(t, options[i]))
	}
	for _, ns := range nodes {
		if !ns.ReadyForConnections(2 * patience) {
			t.Fatal("the NATS cluster did not start")
		}
	}
	deadline := time.After(3 * patience)
	for {
		leaders, current := 0, 0
		for _, ns := range nodes {
			if ns.JetStreamIsLeader() && len(ns.JetStreamClusterPeers()) == size {
				leaders++ // only the leader lists the peers
			}
			if ns.JetStreamIsCurrent() {
				current++
			}
		}
		if leaders == 1 && current == size {
			return nodes, options
		}
		select {
		case <-deadline:
			t.Fatalf("the NATS cluster had no JetStream leader within %v", 3*patience)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// askCluster asks a NATS cluster a question until it answers. A server is in the room once it
// is connected, but the bucket's stream may still be electing its first leader, and until it
// has one, NATS leaves a question about it unanswered: ask again, for as long as an election
// may take on a busy machine.
func askCluster(t *testing.T, what string, ask func(context.Context) error) {
	t.Helper()
	for deadline := time.Now().Add(3 * patience); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := ask(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startNode starts one node of a NATS cluster, and stops it at the end of the test.
func startNode(t *testing.T, options *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(options)
	if err != nil {
		t.Fatalf("cannot start NATS: %v", err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	return ns
}

// TestNATSCluster runs the room on a cluster of three NATS nodes, and kills the node that
// leads the names' bucket: the bucket has three copies (no flag asked for them), the room keeps
// talking, a new name is granted and a taken one refused, once the other two nodes have
// chosen a new leader.
func TestNATSCluster(t *testing.T) {
	t.Parallel()
	secret := rand.Text()
	nodes, _ := startNATSCluster(t, secret, 3)
	urls := func(last *natsserver.Server) string {
		var list []string
		for _, ns := range append(nodes, last) {
			if ns != last || len(list) == len(nodes)-1 {
				list = append(list, fmt.Sprintf("nats://%s@%s", secret, ns.Addr()))
			}
		}
		return strings.Join(list, ",")
	}
	// A long lease: the election of a new leader must not outlast it.
	startServer(t, "-nats", urls(nil), "-lease", "10s") // it creates the bucket

	nc, err := nats.Connect(urls(nil), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var stream jetstream.Stream
	askCluster(t, "the names' bucket", func(ctx context.Context) (err error) {
		stream, err = js.Stream(ctx, "KV_"+namesBucket)
		return err
	})
	if replicas := stream.CachedInfo().Config.Replicas; replicas != 3 {
		t.Fatalf("the names' bucket has %d copies, want 3", replicas)
	}
	var leader *natsserver.Server
	for _, ns := range nodes {
		if ns.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, "KV_"+namesBucket) {
			leader = ns
		}
	}
	if leader == nil {
		t.Fatal("no node leads the names' bucket")
	}
	// bob's server uses the leader, carol's the other two nodes: both must outlive it.
	var leaderFirst []string
	for _, ns := range append([]*natsserver.Server{leader}, nodes...) {
		if url := fmt.Sprintf("nats://%s@%s", secret, ns.Addr()); !slices.Contains(leaderFirst, url) {
			leaderFirst = append(leaderFirst, url)
		}
	}
	// A lease longer than an election (up to 9 s) and a third of a lease: a name outlives it.
	b := startServer(t, "-nats", strings.Join(leaderFirst, ","), "-lease", "20s")
	c := startServer(t, "-nats", urls(leader), "-lease", "20s")
	bob := join(t, b, "bob", "* The room is empty")
	knows([]*process{c}, "bob")
	carol := join(t, c, "carol", "* The room contains: bob")
	bob.expect("* carol has entered the room")

	leader.Shutdown()
	lost := time.Now()
	// bob's server reconnects to another node: lines flow again within 5 s of the loss.
	for i := 0; ; i++ {
		bob.send(fmt.Sprintf("ping %d", i))
		if line, err := carol.line(200 * time.Millisecond); err == nil {
			t.Logf("carol heard %q %v after the loss", line, time.Since(lost).Round(time.Millisecond))
			break
		}
		if took := time.Since(lost); took > 5*time.Second {
			t.Fatalf("carol heard nothing from bob for %v after the loss of a node, want lines within 5 s",
				took.Round(time.Millisecond))
		}
	}
	bob.expect("* The room is split: only the users on this server hear you, until it rejoins",
		"* The room is whole again (what was said on the other side meanwhile is lost)")
	// A claim during the election is told to try again: try until the registry answers, which
	// must be as soon as NATS has a new leader for the bucket.
	var elected time.Time
	claimUntil := func(s *process, name, want string) *user {
		deadline := time.Now().Add(3 * patience)
		for {
			for _, ns := range nodes {
				if elected.IsZero() && ns != leader && ns.JetStreamIsStreamLeader(natsserver.DEFAULT_GLOBAL_ACCOUNT, "KV_"+namesBucket) {
					elected = time.Now()
				}
			}
			attempt := time.Now()
			u := arrive(t, s, name)
			u.send(name)
			got, err := u.line(patience)
			if got == want {
				if elected.IsZero() { // during this attempt
					elected = attempt
				}
				return u
			}
			if err != nil || got != "* Sorry, the room's names cannot be checked right now: try again." || time.Now().After(deadline) {
				t.Fatalf("%s claimed on a cluster without its leader: got %q (%v), want %q", name, got, err, want)
			}
			u.leave()
		}
	}
	dave := claimUntil(b, "dave", "* The room contains: bob, carol")
	t.Logf("dave got his name %v after the loss", time.Since(lost).Round(time.Millisecond))
	// A claim may wait behind a rejoin that started before the election ended.
	if took := time.Since(elected); took > joinWithin+time.Second {
		t.Fatalf("dave got his name %v after the bucket had a new leader, want at most %v",
			took.Round(time.Millisecond), joinWithin+time.Second)
	}
	bob.expect("* dave has entered the room")
	carol.expect("* dave has entered the room")
	claimUntil(c, "bob", "* Sorry, the name bob is taken.")
	dave.send("hello, cluster")
	bob.expect("[dave] hello, cluster")
	carol.expect("[dave] hello, cluster")
	carol.send("/who")
	carol.expect("* Present: bob, carol, dave")
}
