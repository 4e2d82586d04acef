//go:build linux || darwin

package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// One room, many servers. Each server keeps its own clients exactly as stage 7 does, and tells
// the other servers what its users say through NATS, a messaging engine built for this: every
// server publishes on the room's subjects and subscribes to them, and NATS carries each message
// to every subscriber, in the order each publisher sent them. We invent no protocol between
// servers, and keep no list of them: a server joins the room by connecting to NATS.
//
// The subjects, all under one subscription so that they keep their order:
//
//	chat.room.say          lines for the room, already framed as "[alice] Hello\n"
//	chat.room.msg.NAME     a /msg for NAME, framed as "[alice -> you] lunch?\n"
//	chat.room.join.NAME    NAME has entered the room on the publisher's server ("REVISION SERVER")
//	chat.room.leave.NAME   NAME has left it ("REVISION SERVER")
//
// NATS never delivers a server its own messages (the NoEcho option): its users heard them
// already, from the loop.
//
// The NATS client delivers on goroutines of its own, and the loop must neither wait for them
// nor share its state with them. So what they bring goes into a queue (news), and they wake the
// loop through a descriptor that the poller watches (wake_linux.go, wake_other.go): the loop
// sleeps in one place, on sockets and on news alike, and only the loop touches its clients.

const (
	subjectRoom  = "chat.room"
	subjectSay   = "say"
	subjectMsg   = "msg"
	subjectJoin  = "join"
	subjectLeave = "leave"
)

// cluster is what the server keeps for the room across servers.
type cluster struct {
	nc       *nats.Conn
	hub      *natsserver.Server // the NATS server this one runs, without -nats
	storeDir string             // the hub's JetStream directory, removed at shutdown
	natsURL  string             // where NATS is, for the log
	news     inbox              // what the NATS goroutines bring the loop
	registry *registry          // names.go
	split    bool               // NATS is gone: the room is cut in pieces, each server alone
}

// newsKind says what a piece of news is.
type newsKind int

const (
	newsSay       newsKind = iota // data: lines for everyone here (this one to newsExpired: the room's)
	newsMsg                       // data: a line for name alone
	newsJoin                      // name joined on server, with revision
	newsLeave                     // name left server
	newsExpired                   // name's registry entry ran out: its server stopped answering
	newsSplit                     // NATS is gone (err says why)
	newsRejoined                  // NATS is back: members are the others in the room, ours our revisions
	newsClaimed                   // the registry answered client's claim for name
	newsReclaimed                 // one of our names had to be claimed again (revision)
	newsLost                      // one of our names was taken while the room was split
	newsLog                       // line, for the log
)

// news is one thing that happened outside the loop.
type news struct {
	kind     newsKind
	name     string
	data     []byte
	revision uint64
	server   string // the ID of the server a member is on
	err      error
	client   *client // newsClaimed: carried back to the loop, never touched outside it
	claim    claimAnswer
	members  []member          // newsRejoined
	ours     map[string]uint64 // newsRejoined
}

// member is someone in the room on another server.
type member struct {
	name, server string
	revision     uint64
}

// inbox is the queue between the NATS goroutines and the loop: the self-pipe trick. The poller
// can wait for descriptors only, not for a Go channel or a mutex, so a goroutine that has news
// appends it under the mutex and makes the waker's descriptor readable; the poller returns, and
// the loop takes everything that waits in one go. A push into a queue that already waits wakes
// nobody: one wake-up is enough for any number of pushes.
type inbox struct {
	waker
	mu   sync.Mutex
	list []news
}

// push hands n to the loop, from any goroutine.
func (in *inbox) push(n news) {
	in.mu.Lock()
	first := len(in.list) == 0
	in.list = append(in.list, n)
	in.mu.Unlock()
	if first {
		in.wake()
	}
}

// take returns what waits, in order; only the loop calls it.
func (in *inbox) take() []news {
	// Drain first: a push after this point either sees the list still full (and will be
	// taken below) or empty again (and wakes the poller for the next pass).
	in.drain()
	in.mu.Lock()
	list := in.list
	in.list = nil
	in.mu.Unlock()
	return list
}

// joinCluster connects to NATS (after starting it here, without -nats), sets up the name
// registry and subscribes to the room. It runs before the loop: a server that cannot reach NATS
// at start says so in one line and exits with status 2, like a misused flag, since running
// alone is not what its user asked for.
func (s *server) joinCluster() {
	var err error
	if s.news.waker, err = newWaker(); err == nil {
		err = s.poller.add(s.news.fd)
	}
	if err != nil {
		log.Fatalf("cannot start waiting for NATS: %v", err)
	}
	disconnected := make(chan error, 1)
	s.natsURL = s.options.nats
	if s.natsURL == "" {
		s.startHub()
	}
	s.nc, err = nats.Connect(s.natsURL,
		nats.Name("stage8-cluster"),
		nats.NoEcho(), // its own messages: its users heard them already
		// A lost connection is retried for ever, once a second, and nothing published
		// meanwhile is kept for later: a split room does not replay what it said.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(-1),
		// A hub that vanished without closing (a laptop lid) is found out within about 30 s.
		nats.PingInterval(10*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { disconnected <- err }),
		nats.ReconnectHandler(func(*nats.Conn) { s.registry.ask(request{kind: rejoin}) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.news.push(news{kind: newsLog, data: []byte("Server: NATS: " + err.Error())})
		}))
	if err != nil {
		usageError("cannot reach NATS at %s: %v", s.natsURL, err) // flags.go: exit status 2
	}
	if s.maxLine+256 > int(s.nc.MaxPayload()) {
		usageError("-max-line %d is over what NATS at %s carries in one message (%d bytes)",
			s.maxLine, s.natsURL, s.nc.MaxPayload())
	}
	s.registry, err = newRegistry(s.nc, &s.news)
	if err != nil {
		usageError("NATS at %s cannot keep the room's names: %v", s.natsURL, err)
	}
	messages := make(chan *nats.Msg, 1<<16)
	_, err = s.nc.ChanSubscribe(subjectRoom+".>", messages)
	go s.listen(messages, disconnected)
	if err == nil {
		err = s.registry.rejoin() // the room as it is now: the first news the loop takes
	}
	if err != nil {
		usageError("cannot join the room on NATS at %s: %v", s.natsURL, err)
	}
	go s.registry.run()
	fmt.Fprintf(s.out, "Server: in the room through NATS at %s\n", s.natsURL)
}

// startHub starts a NATS server inside this one, with JetStream for the name registry, so that
// one command runs a whole room; the other servers join it with -nats.
func (s *server) startHub() {
	host, portText, err := net.SplitHostPort(s.natsListen)
	port, portErr := strconv.Atoi(portText)
	if err != nil || portErr != nil || port < 0 || port > 65535 {
		usageError("-nats-listen %q is not host:port", s.natsListen)
	}
	if host == "" {
		host = "0.0.0.0" // every IPv4 interface, as -addr does: the room must reach it
	}
	if port == 0 {
		port = natsserver.RANDOM_PORT // to the NATS server, port 0 means its default, 4222
	}
	s.storeDir, err = os.MkdirTemp("", "stage8-nats-")
	if err != nil {
		log.Fatalf("cannot start NATS: %v", err)
	}
	s.hub, err = natsserver.NewServer(&natsserver.Options{
		Host: host, Port: port, JetStream: true, StoreDir: s.storeDir,
		NoSigs: true, NoLog: true, ServerName: "stage8-hub",
	})
	if err == nil {
		// Start reports a busy port through its log, which is off: check the port first.
		var probe net.Listener
		if probe, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(max(port, 0)))); err == nil {
			probe.Close()
			go s.hub.Start()
			if !s.hub.ReadyForConnections(10 * time.Second) {
				err = errors.New("it did not start within 10 s")
			}
		}
	}
	if err != nil {
		os.RemoveAll(s.storeDir)
		log.Fatalf("cannot start NATS on %s: %v%s", s.natsListen, reason(err), natsHint(s.natsListen, err))
	}
	hubPort := s.hub.Addr().(*net.TCPAddr).Port
	s.natsURL = fmt.Sprintf("nats://127.0.0.1:%d", hubPort)
	fmt.Fprintf(s.out, "Server: NATS for the room on port %d; others join with -nats nats://HOST:%[1]d\n", hubPort)
}

// natsHint adds a guess to a busy -nats-listen port: most often, the room's first server runs
// on this machine already, and this one should join it.
func natsHint(addr string, err error) string {
	h := hint(addr, err) // main.go
	if h == "" {
		return ""
	}
	return " (is a stage 8 server running here? join it with -nats nats://127.0.0.1" +
		addr[strings.LastIndex(addr, ":"):] + ", or try -nats-listen)"
}

// listen is the goroutine that passes on what the room's subscription receives, and the loss
// of NATS, in the order they happened. One subscription delivers in order, so the news keeps
// each sender's order. The client reports a lost connection on a goroutine of its own, but
// only once it has put every message it read into the channel: listen passes those on first,
// so that the last words before a split (a server's "alice has left" on its way out) come
// before the split.
func (s *server) listen(messages chan *nats.Msg, disconnected chan error) {
	for {
		select {
		case m := <-messages:
			s.onRoomMessage(m)
		case err := <-disconnected:
			for len(messages) > 0 {
				s.onRoomMessage(<-messages)
			}
			s.news.push(news{kind: newsSplit, err: err})
		}
	}
}

// onRoomMessage turns a message into news for the loop.
func (s *server) onRoomMessage(m *nats.Msg) {
	kind, name, _ := strings.Cut(strings.TrimPrefix(m.Subject, subjectRoom+"."), ".")
	n := news{name: name, data: m.Data}
	switch kind {
	case subjectSay:
		n.kind = newsSay
	case subjectMsg:
		n.kind = newsMsg
	case subjectJoin, subjectLeave:
		n.kind = newsJoin
		if kind == subjectLeave {
			n.kind = newsLeave
		}
		revision, server, _ := strings.Cut(string(m.Data), " ")
		n.revision, _ = strconv.ParseUint(revision, 10, 64)
		n.server = server
	default:
		return
	}
	s.news.push(n)
}

// tellRoom publishes data on one of the room's subjects. Publishing does not wait for NATS: the
// client copies the message into its buffer, and its own goroutine writes it out. While the
// room is split nothing is published: it would only be refused.
func (s *server) tellRoom(subject string, data []byte) {
	if s.split {
		return
	}
	subject = subjectRoom + "." + subject
	// A pass's lines for the room may be more than NATS carries in one message (a megabyte by
	// default): cut them between lines. One line always fits: joinCluster checks -max-line.
	limit := int(s.nc.MaxPayload()) - 128
	for len(data) > limit {
		cut := strings.LastIndexByte(string(data[:limit]), '\n') + 1
		s.nc.Publish(subject, data[:cut])
		data = data[cut:]
	}
	if err := s.nc.Publish(subject, data); err != nil && !s.shuttingDown {
		fmt.Fprintf(s.out, "Server: cannot publish to NATS: %v\n", err)
	}
}

// tellJoined tells the other servers that c has entered the room.
func (s *server) tellJoined(c *client) {
	s.tellRoom(subjectJoin+"."+c.name, fmt.Appendf(nil, "%d %s", c.revision, s.registry.id))
}

// tellLeft tells the other servers that c has left, and gives its name back to the registry.
func (s *server) tellLeft(c *client) {
	if c.remote {
		return // its own server says so
	}
	s.tellRoom(subjectLeave+"."+c.name, fmt.Appendf(nil, "%d %s", c.revision, s.registry.id))
	s.registry.ask(request{kind: release, name: c.name})
}

// hearNews takes what the NATS goroutines queued, in order. It runs in the loop, which alone
// touches the clients.
func (s *server) hearNews() {
	for _, n := range s.news.take() {
		if s.split && n.kind <= newsExpired {
			// NATS is back, but the registry has not rejoined yet: what comes meanwhile is
			// for a room this server is not in. Whoever is there, the rejoin tells.
			continue
		}
		switch n.kind {
		case newsSay:
			s.queueForRoom(nil, n.data[:len(n.data):len(n.data)]) // main.go
		case newsMsg:
			if c := s.named(n.name); c != nil && !c.remote {
				s.send(c, string(n.data))
			}
		case newsJoin:
			s.arrive(member{n.name, n.server, n.revision})
		case newsLeave:
			// Only from the member's own server: a late "alice has left" from the server
			// she left must not take out a new alice who joined on another one meanwhile.
			if c := s.named(n.name); c != nil && c.remote && c.server == n.server {
				s.leave(c, errElsewhere)
			}
		case newsExpired:
			// Only if the entry that ran out came after the one the member has: revisions
			// count up across the bucket, and a new alice's entry comes after the old one's end.
			if c := s.named(n.name); c != nil && c.remote && c.revision < n.revision {
				s.leave(c, errSilent)
			}
		case newsSplit:
			s.onSplit(n.err)
		case newsRejoined:
			s.onRejoined(n.members, n.ours)
		case newsClaimed:
			s.claimed(n.client, n.name, n.revision, n.claim, n.err) // names.go
		case newsReclaimed:
			if c := s.named(n.name); c != nil && !c.remote {
				c.revision = n.revision
				s.tellJoined(c) // the others may have seen its entry run out
			}
		case newsLost:
			if c := s.named(n.name); c != nil && !c.remote {
				s.disconnect(c, drop{"its name was taken on another server while the room was split",
					"someone on another server took your name while the room was split"}) // limits.go
			}
		case newsLog:
			fmt.Fprintf(s.out, "%s\n", n.data)
		}
	}
}

// The reasons a member on another server leaves, as the log shows them.
var (
	errElsewhere = errors.New("on another server")
	errSilent    = errors.New("its server stopped answering")
)

// arrive adds someone who joined on another server, unless the room knows them already.
func (s *server) arrive(m member) {
	switch c := s.named(m.name); {
	case c == nil:
		c = &client{fd: -1, name: m.name, remote: true, revision: m.revision, server: m.server}
		s.joined = append(s.joined, c)
		fmt.Fprintf(s.out, "Server: %s joined, on another server\n", m.name)
		s.announce(c, "* "+m.name+" has entered the room\n")
	case c.remote:
		c.revision, c.server = max(c.revision, m.revision), m.server
	}
	// A user of ours with the same name: the registry settles it (names.go, reclaim).
}

// onSplit: NATS is gone. The users here keep talking among themselves; the others are out of
// reach, and out of the room until it is whole again. What either side says meanwhile is lost
// to the other: NATS keeps nothing for a subscriber that is not connected.
func (s *server) onSplit(err error) {
	if s.split || s.shuttingDown {
		return
	}
	s.split = true
	fmt.Fprintf(s.out, "Server: lost NATS at %s (%v): the room is split\n", s.natsURL, err)
	var here []*client
	for _, c := range s.joined {
		if !c.remote {
			here = append(here, c)
		}
	}
	s.joined = here
	for _, c := range here {
		s.send(c, "* The room is split: only the users on this server hear you, until it rejoins\n")
	}
}

// onRejoined: NATS is back (or the server has just joined), the registry holds our names
// again, and members are the others in the room now.
func (s *server) onRejoined(members []member, ours map[string]uint64) {
	if s.split {
		s.split = false
		fmt.Fprintf(s.out, "Server: reconnected to NATS at %s: the room is whole again\n", s.natsURL)
		for _, c := range s.joined {
			if !c.remote {
				s.send(c, "* The room is whole again (what was said on the other side meanwhile is lost)\n")
			}
		}
	}
	for _, m := range members {
		s.arrive(m)
	}
	for _, c := range s.joined {
		if revision, ok := ours[c.name]; ok && !c.remote {
			c.revision = revision
			s.tellJoined(c) // the others forgot the users here when the room split
		}
	}
}

// leaveRoom, at shutdown, tells the other servers that this one's users are leaving, and gives
// their names back.
func (s *server) leaveRoom() {
	for _, c := range s.joined {
		if !c.remote {
			s.tellLeft(c)
		}
	}
	s.registry.ask(request{kind: stop})
}

// closeCluster waits, at most a second, for the registry to give the names back, then closes
// the connection and the hub.
func (s *server) closeCluster() {
	select {
	case <-s.registry.stopped:
	case <-time.After(time.Second):
	}
	if s.nc.IsConnected() { // a split room has nothing to flush: it would wait for nothing
		s.nc.FlushTimeout(time.Second)
	}
	s.nc.Close()
	if s.hub != nil {
		s.hub.Shutdown()
		os.RemoveAll(s.storeDir)
	}
}

// bucketOperation gives a registry operation at most this long.
func bucketOperation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Second)
}
