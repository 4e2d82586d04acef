//go:build linux || darwin

package main

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"slices"
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
// The subjects, under subscriptions that deliver into one channel, so that they keep their
// order:
//
//	chat.room.say             lines for the room, already framed as "[alice] Hello\n"
//	chat.room.leave           the sender has left the room, after its last lines
//	chat.room.msg.SERVER.NAME a /msg for NAME, on SERVER alone: "[alice -> you] lunch?\n"
//
// Each message says who sent it in its headers: the name, the server, and which holder of the
// name (the revision of the bucket's entry that gave it the name); a /msg also says which
// holder of its receiver's name it is for. A receiver drops what does not come from the
// name's holder as the bucket shows it now (fromHolder): a server that was paused and lost a
// name cannot speak for it, whatever it sends. Who is in the room, and on which server, comes
// from the names' bucket (names.go); "leave" only keeps a departure after its last words. NATS never delivers a server its own messages (the NoEcho option):
// its users heard them already, from the loop.
//
// The loop waits for none of it. What NATS brings comes through a queue (news), and wakes the
// loop through a descriptor that the poller watches (wake_linux.go, wake_other.go); what the
// loop sends leaves through another queue (outbox.go); the connection itself is kept by a
// goroutine of its own (joiner.go), and the names by another (names.go).

const (
	subjectRoom  = "chat.room"
	subjectSay   = "say"
	subjectLeave = "leave"
	subjectMsg   = "msg"

	headerName   = "Chat-Name"
	headerServer = "Chat-Server"
	headerSince  = "Chat-Since"
	headerFor    = "Chat-For" // a /msg: which holder of the receiver's name it is for
)

// fromNATS is how many messages from the room wait for the loop at most. The loop takes them
// in a few microseconds each, so only a loop that has stopped fills it; past it, the NATS
// client drops what comes and says so (natsTrouble), rather than hold the room in memory.
const fromNATS = 4096

// headroom is what a message to NATS needs beside its lines: its subject and headers.
const headroom = 256

// The bounds on what waits in the loop for something else. At each, what comes next is
// dropped, and the log says so.
const (
	// aheadPerName bounds what a name's new holder may say before its entry arrives: the
	// entry comes within a round trip, and a holder's first lines rarely number more
	// (TestAheadBound).
	aheadPerName = 64
	// unheardPerUser bounds the /msg a user is sent while the lease is checked: a check
	// takes one round trip, and a /msg is a person typing.
	unheardPerUser = 64
)

// cluster is what the server keeps for the room across servers.
type cluster struct {
	hub        *natsserver.Server // the NATS server this one runs, without -nats
	storeDir   string             // the hub's JetStream directory, removed at shutdown
	shownURL   string             // where NATS is, as the log shows it: without the secret
	news       inbox              // what the NATS goroutines bring the loop
	outbox     *outbox            // what the loop sends the room (outbox.go)
	joiner     *joiner            // joiner.go
	registry   *registry          // names.go
	inRoom     bool               // connected to NATS: lines flow
	away       []*client          // the members on other servers when the room split
	ahead      map[string][]news  // what a holder said before the watcher brought its entry
	alive      map[string]bool    // the servers whose lease the bucket shows, by ID
	goodUntil  time.Time          // this server may speak for its names until then (speaksFor)
	wasInRoom  bool               // once: a later join is a return
	connection int                // which connection inRoom is about: older news is stale
	maxPayload int                // the most NATS carries in one message
	dropping   bool               // lines for the room did not fit in the outbox: users told
}

// newsKind says what a piece of news is.
type newsKind int

const (
	newsSay      newsKind = iota // data: lines for everyone here, from server
	newsMsg                      // data: a line for to alone
	newsLeave                    // name, on server, left
	newsArrived                  // the names' bucket: name is held on server now
	newsGone                     // the names' bucket: name is free (given back)
	newsAlive                    // the names' bucket: server has a lease
	newsDead                     // the names' bucket: server's lease ended
	newsOnline                   // NATS took us on a connection: lines flow
	newsJoined                   // in the room on a connection: entries are who is there
	newsLost                     // NATS is gone (err says why)
	newsClaimed                  // the registry's answer to client's claim of name
	newsTaken                    // one of our users' names is someone else's now
	newsKept                     // one of our names is ours again, since
	newsTrusted                  // this server's lease is good until goodUntil
	newsCaughtUp                 // the outbox is empty again after it dropped lines
	newsLog                      // data: a line for the log
)

// news is one thing that happened outside the loop.
type news struct {
	kind       newsKind
	name, to   string
	server     string // who sent it, or holds name
	data       []byte
	connection int
	err        error
	client     *client // newsClaimed: carried back to the loop, never touched outside it
	answer     claimAnswer
	entries    []news // newsJoined
	maxPayload int    // newsOnline
	url        string // newsOnline: the NATS server that took us, without the secret

	since, forSince uint64    // which holder of name (the revision of its entry), and of to's
	bucketLost      bool      // newsJoined: NATS had lost the names' bucket
	goodUntil       time.Time // newsTrusted
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

// joinCluster starts what joins the room: the hub (without -nats or NATS_URL), the outbox,
// the registry and the joiner. None of them is waited for: the server serves its own users
// from the start, and is in the room once NATS has taken it.
func (s *server) joinCluster() {
	var err error
	if s.news.waker, err = newWaker(); err == nil {
		err = s.poller.add(s.news.fd)
	}
	if err != nil {
		log.Fatalf("cannot start waiting for NATS: %v", err)
	}
	urls := natsURLs(s.options.nats) // natsurl.go
	if urls == "" {
		urls = s.startHub()
	}
	s.shownURL = withoutSecret(urls)
	s.ahead, s.alive = map[string][]news{}, map[string]bool{}
	s.outbox = newOutbox()
	go s.outbox.run(func() { s.news.push(news{kind: newsCaughtUp}) })
	s.registry = newRegistry(&s.news, s.lease, s.outbox)
	go s.registry.run()
	messages := make(chan *nats.Msg, fromNATS)
	go s.listen(messages)
	s.joiner = &joiner{urls: urls, shown: s.shownURL, stop: make(chan struct{}),
		options: []nats.Option{
			nats.Name("stage9-durable"),
			nats.NoEcho(),        // its own messages: its users heard them already
			nats.DontRandomize(), // the URLs in the order given: the nearest first
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				s.news.push(news{kind: newsLog, data: []byte("Server: " + natsTrouble(err))})
			}),
		},
		say: func(line string) { s.news.push(news{kind: newsLog, data: []byte(line)}) },
		connected: func(nc *nats.Conn) {
			for _, subject := range []string{subjectSay, subjectLeave, subjectMsg + "." + s.registry.id + ".*"} {
				nc.ChanSubscribe(subjectRoom+"."+subject, messages) // fails only if nc closed
			}
			s.registry.ask(request{kind: connected, nc: nc})
		},
		lost: func(nc *nats.Conn, err error) { s.registry.ask(request{kind: lost, nc: nc, err: err}) },
	}
	go s.joiner.run()
}

// startHub starts a NATS server inside this one, with JetStream for the names, so that one
// command runs a whole room; the other servers join it with its URL. It listens on every
// interface (the room is on other laptops), so it asks for a secret: a NATS client without it
// can neither read the room nor write to it. It returns the URL this server joins it with.
func (s *server) startHub() string {
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
	secret := ""
	if s.natsURLFile != "" {
		secret = secretInURLFile(s.natsURLFile) // natsurl.go: restarted, the same room
	}
	if secret == "" {
		secret = rand.Text() // 26 letters and digits, 130 random bits
	}
	s.storeDir, err = os.MkdirTemp("", "stage9-nats-")
	if err != nil {
		log.Fatalf("cannot start NATS: %v", err)
	}
	s.hub, err = natsserver.NewServer(&natsserver.Options{
		Host: host, Port: port, JetStream: true, StoreDir: s.storeDir,
		NoSigs: true, NoLog: true, ServerName: "stage9-hub",
		Authorization: secret, // a token: NATS refuses every client that does not give it
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
	// The names' bucket lives in memory: the directory holds nothing worth keeping, and goes
	// now, so that a hub that dies (kill -9) leaves nothing behind.
	os.RemoveAll(s.storeDir)
	if err != nil {
		log.Fatalf("cannot start NATS on %s: %v%s", s.natsListen, reason(err), natsHint(s.natsListen, err))
	}
	hubPort := s.hub.Addr().(*net.TCPAddr).Port
	urls := joinURLs(host, secret, hubPort) // natsurl.go
	fmt.Fprintf(s.out, "Server: NATS for the room on port %d, with a secret; others join with\n", hubPort)
	for _, u := range urls {
		fmt.Fprintf(s.out, "Server:   %s\n", u)
	}
	if s.natsURLFile != "" {
		if err := writeURLFile(s.natsURLFile, urls); err != nil {
			log.Fatalf("cannot write -nats-url-file: %v", err)
		}
		fmt.Fprintf(s.out, "Server: (written to %s, for NATS_URL=$(cat %[1]s))\n", s.natsURLFile)
	}
	return urls[0] // this machine's
}

// connectedTo is the NATS server nc is connected to, as the log shows it.
func connectedTo(nc *nats.Conn) string {
	u, err := url.Parse(nc.ConnectedUrlRedacted())
	if err != nil {
		return nc.ConnectedUrlRedacted()
	}
	u.User = nil
	return u.String()
}

// withoutSecret is a list of NATS URLs as the log shows it: a secret in a log is no longer one.
func withoutSecret(urls string) string {
	var shown []string
	for _, u := range strings.Split(urls, ",") {
		if parsed, err := url.Parse(strings.TrimSpace(u)); err == nil && parsed.User != nil {
			parsed.User = nil
			u = parsed.String()
		}
		shown = append(shown, u)
	}
	return strings.Join(shown, ",")
}

// natsHint adds a guess to a busy -nats-listen port: most often, the room's first server runs
// on this machine already, and this one should join it.
func natsHint(addr string, err error) string {
	h := hint(addr, err) // main.go
	if h == "" {
		return ""
	}
	return "\n(is a stage 9 server running here? join it with the URL it printed,\nor try -nats-listen)"
}

// natsTrouble says what an error the NATS client reports by itself means for the room.
func natsTrouble(err error) string {
	switch {
	case errors.Is(err, nats.ErrSlowConsumer):
		return "NATS brought the room's lines faster than this server took them: some were lost"
	case errors.Is(err, nats.ErrAuthorization):
		return "NATS refused the secret"
	}
	return "NATS: " + err.Error()
}

// listen is the goroutine that passes on what the room's subscriptions receive. One channel
// delivers in order, so the news keeps each sender's order.
func (s *server) listen(messages chan *nats.Msg) {
	for m := range messages {
		since, _ := strconv.ParseUint(m.Header.Get(headerSince), 10, 64)
		forSince, _ := strconv.ParseUint(m.Header.Get(headerFor), 10, 64)
		n := news{name: m.Header.Get(headerName), server: m.Header.Get(headerServer), data: m.Data,
			since: since, forSince: forSince}
		switch rest := strings.TrimPrefix(m.Subject, subjectRoom+"."); {
		case rest == subjectSay:
			n.kind = newsSay
		case rest == subjectLeave:
			n.kind = newsLeave
		case strings.HasPrefix(rest, subjectMsg+"."):
			n.kind, n.to = newsMsg, rest[strings.LastIndexByte(rest, '.')+1:]
		default:
			continue
		}
		s.news.push(n)
	}
}

// tellRoom queues data from c for one of the room's subjects, with who sends it in the
// headers. It never waits: a goroutine publishes (outbox.go). While the server is out of the
// room nothing is queued: it would be lost anyway.
func (s *server) tellRoom(subject string, c *client, data []byte) {
	s.tell(subject, c, nats.Header{}, data)
}

// tell is tellRoom with more headers.
func (s *server) tell(subject string, c *client, header nats.Header, data []byte) {
	if !s.inRoom {
		return
	}
	header.Set(headerName, c.name)
	header.Set(headerServer, s.registry.id)
	header.Set(headerSince, strconv.FormatUint(c.since, 10))
	subject = subjectRoom + "." + subject
	// A pass's lines for the room may be more than NATS carries in one message (a megabyte by
	// default): cut them between lines. One line always fits: onJoined checks -max-line.
	limit := s.maxPayload - headroom
	for len(data) > limit {
		cut := strings.LastIndexByte(string(data[:limit]), '\n') + 1
		s.publish(&nats.Msg{Subject: subject, Header: header, Data: data[:cut]})
		data = data[cut:]
	}
	s.publish(&nats.Msg{Subject: subject, Header: header, Data: data})
}

// publish hands m to the outbox; if it does not fit, m is dropped, and the first drop is told.
// The outbox holds m's lines as a client's queue holds them: this pass's batches must stay as
// they are (kept), since they are m's.
func (s *server) publish(m *nats.Msg) {
	if s.outbox.push(m) {
		s.kept = true
		return
	}
	if s.dropping {
		return
	}
	s.dropping = true
	fmt.Fprintln(s.out, "Server: NATS is not keeping up: lines for the other servers are dropped")
	s.tellHere("* The other servers are not keeping up: only the users here hear you for now\n")
}

// caughtUp: the outbox is empty again, after it dropped lines.
func (s *server) caughtUp() {
	if !s.dropping {
		return
	}
	s.dropping = false
	fmt.Fprintln(s.out, "Server: NATS keeps up again")
	s.tellHere("* The other servers hear you again (they missed what was said meanwhile)\n")
}

// tellHere sends a line to every user of this server.
func (s *server) tellHere(line string) {
	for _, c := range s.joined {
		if !c.remote {
			s.send(c, line)
		}
	}
}

// tellMsg sends a /msg to the server of its receiver, and no other, naming which holder of
// the name it is for: that server checks (hear).
func (s *server) tellMsg(sender, receiver *client, line string) {
	header := nats.Header{}
	header.Set(headerFor, strconv.FormatUint(receiver.since, 10))
	s.tell(subjectMsg+"."+receiver.server+"."+receiver.name, sender, header, []byte(line))
}

// tellLeft tells the other servers that c has left, after its last lines, and gives its name
// back to the registry (whose watcher tells them too, in case this message is lost).
func (s *server) tellLeft(c *client) {
	if c.remote {
		return // its own server says so
	}
	if c.since > 0 && s.speaksFor(c) {
		s.tellRoom(subjectLeave, c, nil)
	}
	s.registry.ask(request{kind: release, name: c.name})
}

// hearNews takes what the NATS goroutines queued, in order. It runs in the loop, which alone
// touches the clients.
func (s *server) hearNews() {
	for _, n := range s.news.take() {
		switch stale := !s.inRoom || n.connection != s.connection; n.kind {
		case newsSay, newsMsg, newsLeave:
			switch {
			case !s.inRoom:
			case s.fromHolder(n):
				s.hear(n)
			case n.kind != newsLeave && s.fromNewHolder(n):
				s.keepAhead(n)
			}
		case newsArrived:
			if !stale {
				s.arrived(n)
			}
		case newsGone:
			if !stale {
				s.gone(n)
			}
		case newsAlive, newsDead:
			if !stale {
				s.followLease(n)
			}
		case newsOnline:
			s.onConnected(n)
		case newsJoined:
			if !stale {
				s.onJoined(n)
			}
		case newsLost:
			s.onLost(n.err)
		case newsClaimed:
			s.claimed(n.client, n) // names.go
		case newsTaken:
			if c := s.named(n.name); c != nil && !c.remote {
				s.lost(c)
			}
		case newsKept:
			s.confirmed(n) // names.go
		case newsTrusted:
			s.leaseGood(n) // names.go
		case newsCaughtUp:
			s.caughtUp()
		case newsLog:
			fmt.Fprintf(s.out, "%s\n", n.data)
		}
	}
}

// fromHolder reports whether n comes from the holder of its sender's name, as the bucket has
// shown it. From an older holder (a server that lost the name while it was paused) it does
// not.
func (s *server) fromHolder(n news) bool {
	c := s.named(n.name)
	return c != nil && c.remote && c.server == n.server && c.since == n.since
}

// fromNewHolder reports whether n comes from a holder newer than the one the bucket has shown:
// its entry is on its way.
func (s *server) fromNewHolder(n news) bool {
	c := s.named(n.name)
	return c == nil || c.since < n.since
}

// keepAhead keeps what a new holder said until the watcher brings its entry (arrived), so that
// its arrival still comes before its first line; up to aheadPerName.
func (s *server) keepAhead(n news) {
	if len(s.ahead[n.name]) == aheadPerName {
		fmt.Fprintf(s.out, "Server: dropped a line from %s, whose arrival has not come yet\n", n.name)
		return
	}
	s.ahead[n.name] = append(s.ahead[n.name], n)
}

// hear delivers what a holder sent. A /msg goes to the user it names only if that user is the
// holder its sender's server saw, and only while this server's lease is known to be good: a
// server woken from a pause does not hand it to a user whose name may have moved meanwhile.
// It waits for the lease check (resume), or goes with the user.
func (s *server) hear(n news) {
	switch n.kind {
	case newsSay:
		s.queueForRoom(nil, n.data[:len(n.data):len(n.data)]) // main.go
	case newsMsg:
		c := s.named(n.to)
		switch {
		case c == nil || c.remote || c.since != n.forSince:
			fmt.Fprintf(s.out, "Server: dropped a /msg for another holder of the name %s\n", n.to)
		case s.speaksFor(c):
			s.send(c, string(n.data))
		case len(c.unheard) == unheardPerUser:
			fmt.Fprintf(s.out, "Server: dropped a /msg for %s, who waits for the lease\n", n.to)
		default:
			c.unheard = append(c.unheard, n.data)
			s.wait(c, nil) // names.go
		}
	case newsLeave:
		s.leave(s.named(n.name), errElsewhere)
	}
}

// The reasons a member on another server leaves, as the log shows them.
var (
	errElsewhere = errors.New("on another server")
	errSilent    = errors.New("its server stopped answering")
)

// followLease follows a server's lease in the names' bucket: it began, or ended.
func (s *server) followLease(n news) {
	if n.kind == newsAlive {
		s.alive[n.server] = true
		return
	}
	delete(s.alive, n.server)
	if n.server == s.registry.id {
		// Our own lease ran out (this server was paused, or NATS slow): speak no more for
		// our names until the registry has them back.
		s.goodUntil = time.Time{}
		s.registry.ask(request{kind: check})
		return
	}
	for _, c := range slices.Clone(s.joined) {
		if c.remote && c.server == n.server {
			s.leave(c, errSilent)
		}
	}
}

// arrived: the bucket shows name held on another server, by the holder since.
func (s *server) arrived(n news) {
	c := s.named(n.name)
	switch {
	case !s.alive[n.server]:
		return // a name left behind by a server whose lease ended: free for the next claim
	case c != nil && c.since > n.since:
		return // an older holder's entry: the one we know came after it
	case c != nil && c.remote && c.server == n.server && c.since == n.since:
		return
	case c != nil && c.remote:
		s.leave(c, errSilent) // its server's lease ran out, and someone else has the name
	case c != nil:
		s.lost(c) // our lease ran out (this server was paused), and the name is taken
	}
	c = &client{fd: -1, name: n.name, remote: true, server: n.server, since: n.since}
	s.joined = append(s.joined, c)
	fmt.Fprintf(s.out, "Server: %s joined, on another server\n", c.name)
	s.announce(c, "* "+c.name+" has entered the room\n")
	ahead := s.ahead[c.name]
	delete(s.ahead, c.name)
	for _, n := range ahead {
		if s.fromHolder(n) {
			s.hear(n)
		}
	}
}

// gone: the bucket shows name free: its holder gave it back.
func (s *server) gone(n news) {
	c := s.named(n.name)
	switch {
	case c == nil || !c.remote || c.since > n.since:
		// Nobody by that name, ours, or a holder who came after this entry ended.
	default:
		s.leave(c, errElsewhere)
	}
}

// lost disconnects a user of ours whose name is someone else's now.
func (s *server) lost(c *client) {
	s.disconnect(c, drop{"its name was taken on another server",
		"someone on another server has your name now"}) // limits.go
}

// onConnected: NATS has taken this server. Lines flow again at once, to and from the members
// who were out of reach, without waiting for the names' bucket (on a NATS cluster it may be
// electing a new leader): onJoined, when it comes, says who left or came meanwhile.
func (s *server) onConnected(n news) {
	s.connection, s.maxPayload, s.shownURL = n.connection, n.maxPayload, n.url
	if longest := s.maxLine + len("[] \n") + 32; longest > s.maxPayload-headroom {
		usageError("-max-line %d is over what NATS at %s carries in one message (%d bytes)",
			s.maxLine, s.shownURL, s.maxPayload)
	}
	s.inRoom = true
	if s.wasInRoom {
		s.joined = append(s.joined, s.away...)
		fmt.Fprintf(s.out, "Server: back in the room through NATS at %s\n", s.shownURL)
		s.tellHere("* The room is whole again (what was said on the other side meanwhile is lost)\n")
	}
	s.away = nil
}

// onJoined: the registry holds our names (at the start of a connection, after our lease ran
// out, or after NATS lost the bucket), and entries are the room now. If NATS lost the bucket,
// our users are told that their names were claimed again.
func (s *server) onJoined(n news) {
	if !s.wasInRoom { // the first time: from now on, a lost connection is a split
		fmt.Fprintf(s.out, "Server: in the room through NATS at %s\n", s.shownURL)
		s.wasInRoom = true
	}
	if n.bucketLost {
		fmt.Fprintf(s.out, "Server: NATS lost the room's names: made them again, and claimed ours\n")
		s.tellHere("* NATS lost the room's names: this server claimed yours again\n")
	}
	clear(s.alive)
	for _, e := range n.entries {
		if e.kind == newsAlive {
			s.alive[e.server] = true
		}
	}
	names := slices.DeleteFunc(n.entries, func(e news) bool { return e.kind == newsAlive || !s.alive[e.server] })
	slices.SortFunc(names, func(a, b news) int { return cmp.Compare(a.since, b.since) })
	for _, c := range slices.Clone(s.joined) {
		if c.remote && !slices.ContainsFunc(names, func(e news) bool {
			return e.name == c.name && e.server == c.server && e.since == c.since
		}) {
			s.leave(c, errSilent) // gone while this server was not watching
		}
	}
	for _, e := range names {
		s.arrived(e)
	}
}

// onLost: NATS is gone. The users here keep talking among themselves; the others are out of
// reach, and out of the room until this server is back in it. What either side says meanwhile
// is lost to the other: NATS keeps nothing for a subscriber that is not connected.
func (s *server) onLost(err error) {
	if !s.inRoom || s.shuttingDown {
		return
	}
	s.inRoom = false
	var here, away []*client
	for _, c := range s.joined {
		if c.remote {
			away = append(away, c)
		} else {
			here = append(here, c)
		}
	}
	s.joined, s.away = here, away
	clear(s.ahead)
	fmt.Fprintf(s.out, "Server: lost NATS at %s (%v): the room is split\n", s.shownURL, err)
	for _, c := range here {
		s.send(c, "* The room is split: only the users on this server hear you, until it rejoins\n")
		if len(away) > 0 {
			s.send(c, "* Out of reach: "+listNames(away)+"\n")
		}
	}
	for _, c := range here {
		s.resume(c) // names.go: lines held for a lease check go to the users here
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

// closeCluster waits, at most a second, for the registry to give the names back and for the
// outbox to hand NATS the last words, then closes the connection and the hub.
func (s *server) closeCluster() {
	deadline := time.After(time.Second)
	select {
	case <-s.registry.stopped:
	case <-deadline:
	}
	for !s.outbox.empty() {
		select {
		case <-deadline:
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	close(s.joiner.stop)
	if nc := s.outbox.conn.Load(); nc != nil {
		nc.FlushTimeout(time.Second)
		nc.Close()
	}
	if s.hub != nil {
		s.hub.Shutdown()
	}
}
