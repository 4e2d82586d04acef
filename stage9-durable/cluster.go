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
// The subjects, under two subscriptions that deliver into one channel, so that they keep their
// order:
//
//	chat.room.say             lines for the room, already framed as "[alice] Hello\n"
//	chat.room.leave           the sender has left the room, after its last lines
//	chat.room.msg.SERVER.NAME a /msg for NAME, on SERVER alone: "[alice -> you] lunch?\n"
//
// Each message says who sent it in its headers: the name, the server, and which holder of
// the name (the revision of the registry's entry that created it). A receiver drops what does
// not come from the name's holder as the registry shows it now (fromHolder): a server that was
// paused and lost a name cannot speak for it, whatever it sends. Who is in the room, and where,
// comes from the registry's watcher (names.go); "leave" only keeps a departure after its last
// words.
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
	subjectLeave = "leave"
	subjectMsg   = "msg"

	headerName    = "Chat-Name"
	headerServer  = "Chat-Server"
	headerSince   = "Chat-Since"
	headerToSince = "Chat-To-Since" // a /msg: which holder of the receiver's name it is for
)

// cluster is what the server keeps for the room across servers.
type cluster struct {
	nc       *nats.Conn
	hub      *natsserver.Server // the NATS server this one runs, without -nats
	storeDir string             // the hub's JetStream directory, removed at shutdown
	natsURL  string             // where NATS is, secret included: -nats, or the hub
	shownURL string             // the NATS server it is connected to, for the log
	news     inbox              // what the NATS goroutines bring the loop
	registry *registry          // names.go
	split    bool               // NATS is gone: the room is cut in pieces, each server alone
	away     []*client          // the members on other servers when the room split
	epoch    int                // how many times NATS was lost: news from before is stale
	// ahead keeps what a holder said before the watcher brought its entry, for its arrival.
	ahead     map[string][]news
	alive     map[string]bool // the servers whose lease the registry shows, by ID
	goodUntil time.Time       // this server may speak for its names until then (speaksFor)
}

// The bounds on what waits in the loop for something else. At each, what comes next is
// dropped and the log says so; every one is tested (TestBounds).
const (
	// aheadPerName bounds what a name's new holder may say before its entry arrives: the
	// entry comes within a round trip, and a holder's first lines rarely number more.
	aheadPerName = 64
	// unheardPerUser bounds the /msg a user is sent while the lease is checked: a check
	// takes one round trip, and a /msg is a person typing.
	unheardPerUser = 64
)

// newsKind says what a piece of news is.
type newsKind int

const (
	newsSay         newsKind = iota // data: lines for everyone here, from a holder
	newsMsg                         // data: a line for name alone, from a holder
	newsLeave                       // name left, says its holder
	newsEntry                       // the registry's watcher: from holds name now (revision)
	newsDeleted                     // the registry's watcher: name was given back (revision)
	newsServerUp                    // the registry's watcher: from.server has a lease
	newsServerGone                  // the registry's watcher: from.server's lease ended
	newsSplit                       // NATS is gone (err says why); epoch counts the losses
	newsReconnected                 // NATS is back, for epoch: lines flow again
	newsRejoined                    // the registry is back: entries are the room now, for epoch
	newsClaimed                     // the registry answered client's claim for name
	newsConfirmed                   // one of our names is ours again, since from.since
	newsLeaseGood                   // this server's lease is good until goodUntil
	newsLost                        // one of our names is someone else's now
	newsLog                         // data, a line for the log
)

// holder says which holder of a name someone is: the server, and the revision of the entry
// that created the name's lease.
type holder struct {
	server string
	since  uint64
}

// news is one thing that happened outside the loop.
type news struct {
	kind      newsKind
	name      string
	to        string // newsMsg: who it is for
	data      []byte
	from      holder // who sent it, or who holds name
	revision  uint64
	epoch     int
	err       error
	client    *client // newsClaimed: carried back to the loop, never touched outside it
	claim     claimAnswer
	goodUntil time.Time // newsLeaseGood
	entries   []news    // newsRejoined
	lost      bool      // newsRejoined: NATS had lost the names' bucket
	toSince   uint64    // newsMsg: which holder of to's name it is for
}

// inbox is the queue between the NATS goroutines and the loop: the self-pipe trick. The poller
// can wait for descriptors only, not for a Go channel or a mutex, so a goroutine that has news
// appends it under the mutex and makes the waker's descriptor readable; the poller returns, and
// the loop takes everything that waits in one go. A push into a queue that already waits wakes
// nobody: one wake-up is enough for any number of pushes.
type inbox struct {
	waker
	mu    sync.Mutex
	list  []news
	taken *sync.Cond // the loop took the list: pushRoom may go on
}

// roomQueue bounds the room's messages from NATS that wait for the loop, in the
// subscription's channel and again in the inbox. The loop takes the whole inbox at each pass,
// so this many waiting means it is stalled or overwhelmed: listen then waits (pushRoom), the
// channel fills, and the NATS client drops what comes next and reports it, which the log says
// (natsTrouble). A lost line is better than a server whose memory grows without end.
const roomQueue = 1 << 16

// pushRoom is push for the room's messages: it waits while roomQueue of them wait already.
func (in *inbox) pushRoom(n news) {
	in.mu.Lock()
	for len(in.list) >= roomQueue {
		in.taken.Wait()
	}
	in.mu.Unlock()
	in.push(n)
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
	in.taken.Broadcast()
	in.mu.Unlock()
	return list
}

// connEvent is NATS lost (err) or found again.
type connEvent struct {
	err error
	up  bool
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
	s.ahead, s.alive = map[string][]news{}, map[string]bool{}
	s.news.taken = sync.NewCond(&s.news.mu)
	s.natsURL = s.options.nats
	if s.natsURL == "" {
		s.startHub()
	}
	s.shownURL = withoutSecret(s.natsURL)
	// The client reports a lost connection and a new one on one goroutine of its own, in the
	// order they happened: both go through one channel to listen, which reports them in that
	// order too.
	conn := make(chan connEvent, 16)
	stalled := false // the watcher of the names has been said to be stalled
	s.nc, err = nats.Connect(s.natsURL,
		nats.Name("stage9-durable"),
		nats.NoEcho(),        // its own messages: its users heard them already
		nats.DontRandomize(), // the -nats URLs in the order given: the nearest first
		// A lost connection is retried for ever, once a second, and nothing published
		// meanwhile is kept for later: a split room does not replay what it said.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(-1),
		// A hub that vanished without closing (a laptop lid) is found out within about 30 s.
		nats.PingInterval(10*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { conn <- connEvent{err: err} }),
		nats.ReconnectHandler(func(*nats.Conn) {
			stalled = false
			conn <- connEvent{up: true}
		}),
		// All three run on one goroutine of the client's: stalled needs no lock.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrConsumerNotActive) {
				if stalled {
					return // said once per loss: the client says it every 10 s
				}
				stalled = true
			}
			s.news.push(news{kind: newsLog, data: []byte("Server: " + natsTrouble(err))})
		}))
	if errors.Is(err, nats.ErrAuthorization) {
		usageError("NATS at %s refused the secret in the -nats URL (missing or wrong)", s.shownURL)
	}
	if err != nil {
		usageError("cannot reach NATS at %s: %v", s.shownURL, err) // flags.go: exit status 2
	}
	if s.maxLine+256 > int(s.nc.MaxPayload()) {
		usageError("-max-line %d is over what NATS at %s carries in one message (%d bytes)",
			s.maxLine, s.shownURL, s.nc.MaxPayload())
	}
	s.registry, err = newRegistry(s.nc, &s.news, s.lease)
	if err != nil {
		usageError("NATS at %s cannot keep the room's names: %v", s.shownURL, err)
	}
	messages := make(chan *nats.Msg, roomQueue)
	_, err = s.nc.ChanSubscribe(subjectRoom+"."+subjectSay, messages)
	if err == nil {
		_, err = s.nc.ChanSubscribe(subjectRoom+"."+subjectLeave, messages)
	}
	if err == nil {
		_, err = s.nc.ChanSubscribe(subjectRoom+"."+subjectMsg+"."+s.registry.id+".*", messages)
	}
	go s.listen(messages, conn)
	if err == nil {
		err = s.registry.rejoin(0) // the room as it is now: the first news the loop takes
	}
	// A NATS cluster with a node down cannot give the names three copies: the server says so,
	// and waits for the node, before it lets anyone in (they wait in the listener's backlog).
	for said := false; errors.Is(err, errCopies); err = s.registry.rejoin(0) {
		if !said {
			fmt.Fprintf(s.out, "Server: %v yet; trying again\nServer:   every second (NATS says: %s)\n",
				errCopies, strings.TrimPrefix(err.Error(), errCopies.Error()+": "))
			s.handLog() // log.go: the loop, which hands the log on, has not started yet
			said = true
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		usageError("NATS at %s cannot keep the room's names: %v", s.shownURL, err)
	}
	go s.registry.serve()
	s.shownURL = connectedTo(s.nc) // of the -nats list, the one that answered
	fmt.Fprintf(s.out, "Server: in the room through NATS at %s\n", s.shownURL)
}

// startHub starts a NATS server inside this one, with JetStream for the name registry, so that
// one command runs a whole room; the other servers join it with -nats. It listens on every
// interface (the room is on other laptops), so it asks for a secret: a NATS client without it
// can neither read the room nor write to it. The secret goes in the URL the others join with.
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
	secret := s.natsSecret
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
	if err != nil {
		os.RemoveAll(s.storeDir)
		log.Fatalf("cannot start NATS on %s: %v%s", s.natsListen, reason(err), natsHint(s.natsListen, err))
	}
	hubPort := s.hub.Addr().(*net.TCPAddr).Port
	s.natsURL = fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, hubPort)
	fmt.Fprintf(s.out, "Server: NATS for the room on port %d, with a secret; others join with\n", hubPort)
	fmt.Fprintf(s.out, "Server:   -nats nats://%s@HOST:%d\n", secret, hubPort)
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

// withoutSecret is a -nats list as the log shows it: a secret in a log is no longer one.
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
	return "\n(is a stage 9 server running here? join it with the -nats URL it printed,\nor try -nats-listen)"
}

// natsTrouble says what an error the NATS client reports by itself means for the room.
func natsTrouble(err error) string {
	switch {
	case errors.Is(err, nats.ErrConsumerNotActive):
		return "NATS stopped answering the watch on the room's names (until it is back)"
	case errors.Is(err, nats.ErrSlowConsumer):
		return "NATS brought the room's lines faster than this server took them: some were lost"
	case errors.Is(err, nats.ErrAuthorization):
		return "NATS refused the secret: check the -nats URL"
	}
	return "NATS: " + err.Error()
}

// listen is the goroutine that passes on what the room's subscriptions receive, and the loss
// of NATS and its return, in the order they happened. One subscription's channel delivers in
// order, so the news keeps each sender's order. The client reports a lost connection on a
// goroutine of its own, but only once it has put every message it read into the channel:
// listen passes those on first, so that the last words before a split (a server's "alice has
// left" on its way out) come before the split. A return is passed on to the registry, after
// the split it ends: the loop hears of the split first, however fast NATS came back.
func (s *server) listen(messages chan *nats.Msg, conn chan connEvent) {
	epoch := 0
	for {
		select {
		case m := <-messages:
			s.onRoomMessage(m)
		case e := <-conn:
			if e.up {
				s.news.push(news{kind: newsReconnected, epoch: epoch})
				s.registry.ask(request{kind: rejoin, epoch: epoch})
				continue
			}
			for len(messages) > 0 {
				s.onRoomMessage(<-messages)
			}
			epoch++
			s.news.push(news{kind: newsSplit, err: e.err, epoch: epoch})
		}
	}
}

// onRoomMessage turns a message into news for the loop.
func (s *server) onRoomMessage(m *nats.Msg) {
	since, _ := strconv.ParseUint(m.Header.Get(headerSince), 10, 64)
	toSince, _ := strconv.ParseUint(m.Header.Get(headerToSince), 10, 64)
	n := news{name: m.Header.Get(headerName), data: m.Data, from: holder{m.Header.Get(headerServer), since},
		toSince: toSince}
	switch rest := strings.TrimPrefix(m.Subject, subjectRoom+"."); {
	case rest == subjectSay:
		n.kind = newsSay
	case rest == subjectLeave:
		n.kind = newsLeave
	case strings.HasPrefix(rest, subjectMsg+"."):
		n.kind, n.to = newsMsg, rest[strings.LastIndexByte(rest, '.')+1:]
	default:
		return
	}
	s.news.pushRoom(n)
}

// tellRoom publishes data for c on one of the room's subjects, with who sends it in the
// headers. Publishing does not wait for NATS: the client copies the message into its buffer,
// and its own goroutine writes it out. While the room is split nothing is published: it would
// only be refused.
func (s *server) tellRoom(subject string, c *client, data []byte) {
	s.tell(subject, c, nats.Header{}, data)
}

// tell is tellRoom with more headers.
func (s *server) tell(subject string, c *client, header nats.Header, data []byte) {
	if s.split {
		return
	}
	header.Set(headerName, c.name)
	header.Set(headerServer, s.registry.id)
	header.Set(headerSince, strconv.FormatUint(c.since, 10))
	subject = subjectRoom + "." + subject
	// A pass's lines for the room may be more than NATS carries in one message (a megabyte by
	// default): cut them between lines. One line always fits: joinCluster checks -max-line.
	limit := int(s.nc.MaxPayload()) - 256
	for len(data) > limit {
		cut := strings.LastIndexByte(string(data[:limit]), '\n') + 1
		s.nc.PublishMsg(&nats.Msg{Subject: subject, Header: header, Data: data[:cut]})
		data = data[cut:]
	}
	if err := s.nc.PublishMsg(&nats.Msg{Subject: subject, Header: header, Data: data}); err != nil && !s.shuttingDown {
		fmt.Fprintf(s.out, "Server: cannot publish to NATS: %v\n", err)
	}
}

// tellMsg sends a /msg to the server of the holder of its receiver's name, and no other,
// naming which holder it is for: that server checks (hear).
func (s *server) tellMsg(sender, receiver *client, line string) {
	header := nats.Header{}
	header.Set(headerToSince, strconv.FormatUint(receiver.since, 10))
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
		switch n.kind {
		case newsSay, newsMsg, newsLeave:
			switch {
			case s.split:
			case s.fromHolder(n):
				s.hear(n)
			case n.kind != newsLeave && s.fromNewHolder(n):
				s.keepAhead(n)
			}
		case newsEntry, newsDeleted, newsServerUp, newsServerGone:
			// From a watcher of before the last split, or while split: the rejoin lists
			// the room afresh.
			if !s.split && n.epoch == s.epoch {
				s.followRegistry(n)
			}
		case newsSplit:
			s.onSplit(n.err, n.epoch)
		case newsReconnected:
			if n.epoch == s.epoch { // else NATS was lost again meanwhile
				s.onReconnected()
			}
		case newsRejoined:
			if n.epoch == s.epoch { // else NATS was lost again meanwhile: another rejoin comes
				s.onRejoined(n.entries, n.lost)
			}
		case newsClaimed:
			s.claimed(n.client, n) // names.go
		case newsConfirmed:
			s.confirmed(n) // names.go
		case newsLeaseGood:
			s.leaseGood(n) // names.go
		case newsLost:
			if c := s.named(n.name); c != nil && !c.remote {
				s.lost(c)
			}
		case newsLog:
			fmt.Fprintf(s.out, "%s\n", n.data)
		}
	}
}

// fromHolder reports whether n comes from the holder of its sender's name, as the registry's
// watcher has shown it. From an older holder (a server that lost the name while it was
// paused) it does not.
func (s *server) fromHolder(n news) bool {
	c := s.named(n.name)
	return c != nil && c.remote && c.server == n.from.server && c.since == n.from.since
}

// fromNewHolder reports whether n comes from a holder newer than the one the watcher has
// shown: its entry is on its way.
func (s *server) fromNewHolder(n news) bool {
	c := s.named(n.name)
	return c == nil || c.since < n.from.since
}

// keepAhead keeps what a new holder said until the watcher brings its entry (arrive), so that
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
// It waits for the lease check (resume) or is dropped with the user.
func (s *server) hear(n news) {
	switch n.kind {
	case newsSay:
		s.queueForRoom(nil, n.data[:len(n.data):len(n.data)]) // main.go
	case newsMsg:
		c := s.named(n.to)
		switch {
		case c == nil || c.remote || c.since != n.toSince:
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

// followRegistry follows a change in the bucket: a server's lease began or ended, someone
// holds a name now, or no longer.
func (s *server) followRegistry(n news) {
	switch n.kind {
	case newsServerUp:
		s.alive[n.from.server] = true
		return
	case newsServerGone:
		delete(s.alive, n.from.server)
		if n.from.server == s.registry.id {
			// Our own lease ran out (this server was paused, or NATS slow): speak no more
			// for our names until the registry has them back.
			s.goodUntil = time.Time{}
			s.registry.ask(request{kind: check})
			return
		}
		for _, c := range slices.Clone(s.joined) {
			if c.remote && c.server == n.from.server {
				s.leave(c, errSilent)
			}
		}
		return
	}
	c := s.named(n.name)
	switch {
	case n.kind == newsEntry && !s.alive[n.from.server]:
		// A name left behind by a server whose lease ended: free for the next claim.
	case n.kind == newsEntry && c != nil && c.since > n.from.since:
		// An older holder's entry: the one we know came after it.
	case n.kind == newsEntry && c != nil && c.remote && c.server == n.from.server && c.since == n.from.since:
		c.revision = max(c.revision, n.revision)
	case n.kind == newsEntry:
		if c != nil && !c.remote {
			s.lost(c) // someone else holds our user's name now: the registry says so
		} else if c != nil {
			s.leave(c, errSilent)
		}
		s.arrive(n)
	case c == nil || c.revision > n.revision || !c.remote:
		// Nobody here by that name, a holder who came after this entry ended, or ours.
	default:
		s.leave(c, errElsewhere)
	}
}

// arrive adds someone the registry shows on another server, and delivers what they said
// before the watcher brought their entry.
func (s *server) arrive(n news) {
	c := &client{fd: -1, name: n.name, remote: true, revision: n.revision, server: n.from.server, since: n.from.since}
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

// lost disconnects a user of ours whose name is someone else's now.
func (s *server) lost(c *client) {
	s.disconnect(c, drop{"its name was taken on another server",
		"someone on another server has your name now"}) // limits.go
}

// onSplit: NATS is gone. The users here keep talking among themselves; the others are out of
// reach, and out of the room until it is whole again. What either side says meanwhile is lost
// to the other: NATS keeps nothing for a subscriber that is not connected.
func (s *server) onSplit(err error, epoch int) {
	s.epoch = epoch
	if s.split || s.shuttingDown {
		return
	}
	s.split = true
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

// onReconnected: NATS is back. Lines flow again at once, to and from the members who were out
// of reach, without waiting for the names' bucket, which may be electing a new leader on a
// NATS cluster: the registry's rejoin, when it comes, says who left or came meanwhile.
func (s *server) onReconnected() {
	if !s.split {
		return
	}
	s.split = false
	s.joined = append(s.joined, s.away...)
	s.away = nil
	s.shownURL = connectedTo(s.nc) // in a NATS cluster, maybe another node
	fmt.Fprintf(s.out, "Server: reconnected to NATS at %s: the room is whole again\n", s.shownURL)
	for _, c := range s.joined {
		if !c.remote {
			s.send(c, "* The room is whole again (what was said on the other side meanwhile is lost)\n")
		}
	}
}

// onRejoined: the registry holds our names again (at start, after a split, after our lease
// ran out, or after NATS lost the bucket), and entries are the room now, in the order they
// came. If NATS lost the bucket, the users are told that their names were claimed again.
func (s *server) onRejoined(entries []news, lost bool) {
	if lost {
		fmt.Fprintf(s.out, "Server: NATS lost the room's names: made them again, and claimed ours\n")
		for _, c := range s.joined {
			if !c.remote {
				s.send(c, "* NATS lost the room's names: this server claimed yours again\n")
			}
		}
	}
	clear(s.alive)
	for _, n := range entries {
		if n.kind == newsServerUp {
			s.alive[n.from.server] = true
		}
	}
	names := slices.DeleteFunc(entries, func(n news) bool { return n.kind == newsServerUp || !s.alive[n.from.server] })
	slices.SortFunc(names, func(a, b news) int { return cmp.Compare(a.from.since, b.from.since) })
	for _, c := range slices.Clone(s.joined) {
		if c.remote && !slices.ContainsFunc(names, func(n news) bool {
			return n.name == c.name && n.from.server == c.server && n.from.since == c.since
		}) {
			s.leave(c, errSilent) // gone while this server was not watching
		}
	}
	for _, n := range names {
		s.followRegistry(n)
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
