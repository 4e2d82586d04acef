//go:build linux || darwin

package main

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"
)

// One room, many servers. Each server keeps its clients as stage 7 does, and publishes what
// they say on the room's subjects, to which every server subscribes: NATS carries each message
// to every subscriber (but its publisher: NoEcho), in the order it was sent. No protocol of our
// own, no list of servers: a server joins the room by connecting to NATS.
//
//	chat.room.say             lines for the room, framed already: "[alice] Hello\n"
//	chat.room.msg.SERVER.NAME a /msg for NAME, on SERVER alone: "[alice -> you] lunch?\n"
//
// Who is where comes from the names' bucket (names.go). The loop waits for none of it: the NATS
// client, the joiner (joiner.go), the registry (names.go) and the outbox (outbox.go) work on
// goroutines of their own, and hand the loop functions to run (news): only it touches clients.

const (
	subjectSay = "chat.room.say"
	subjectMsg = "chat.room.msg"
)

// Each message says who sent it in its headers: the name, its server, and which holder of the
// name it is (since: the revision of the bucket's entry that gave it); a /msg also which holder
// of its receiver's name it is for. A receiver drops what does not come from the holder the
// bucket shows it (listen): a server paused past its lease, whose name moved meanwhile, cannot
// speak for it, whatever it sends.
const (
	headerName   = "Chat-Name"
	headerServer = "Chat-Server"
	headerSince  = "Chat-Since"
	headerFor    = "Chat-For"
)

// The bounds on what waits in the loop for something else. At each, what comes next is
// dropped, and the log says so.
const (
	// aheadPerName bounds what a name's new holder may say before its entry arrives: the
	// entry comes within a round trip, and a holder's first lines rarely number more
	// (TestAheadBound).
	aheadPerName = 64
	// unheardPerUser bounds the /msg a user is sent while the lease is checked, and
	// forRoomPerUser what it says for the other servers meanwhile (a batch per read): a check
	// takes one round trip, and a person types a few lines a second.
	unheardPerUser = 64
	forRoomPerUser = 64
)

// fromNATS is the most bytes of the room's lines that wait for the loop, as for a client's
// output: the loop takes them in microseconds, and one that does not is stuck, or far behind.
// Past it, what comes is dropped, and the log says so.
const fromNATS = 4 << 20

const headroom = 256 // what a message to NATS needs beside its lines: subject, protocol

type cluster struct {
	hub        *natsserver.Server // the NATS server this one runs, without -nats or NATS_URL
	shownURL   string             // where NATS is, as the log shows it (host:port)
	news       todoList           // what the other goroutines hand the loop to do
	newsPipe   int                // the pipe's end that the poller watches
	outbox     *outbox            // outbox.go
	joiner     *joiner            // joiner.go
	registry   *registry          // names.go
	inRoom     bool               // NATS took us: lines flow
	wasInRoom  bool               // once: the next join is a return
	connection int                // which connection inRoom is about: older news is stale
	maxPayload int                // the most NATS carries in one message
	dropping   bool               // the outbox was full: the users were told
	heard      atomic.Int64       // bytes of the room's lines handed to the loop, not yet taken

	away      []*client           // the members on other servers when the room split
	ahead     map[string][]func() // what a holder said before the bucket showed its entry
	alive     map[string]bool     // the servers whose lease the bucket shows, by ID
	goodUntil time.Time           // this server may speak for its names until then (speaksFor)
}

// todoList is what any goroutine hands one other to do, without waiting; that one does it in
// order, woken by woken: once is enough for any number of pushes.
type todoList struct {
	mu    sync.Mutex
	list  []func()
	woken chan struct{}
}

func newTodoList() todoList { return todoList{woken: make(chan struct{}, 1)} }

func (q *todoList) push(do func()) {
	q.mu.Lock()
	q.list = append(q.list, do)
	q.mu.Unlock()
	select {
	case q.woken <- struct{}{}:
	default: // woken already
	}
}

func (q *todoList) take() []func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.list
	q.list = nil
	return list
}

// hearNews runs, in the loop, what the others handed it. They wake it by the self-pipe trick,
// as signals do (shutdown.go); a full pipe is readable already, so a failed write did its job.
func (s *server) hearNews() {
	for n, _ := unix.Read(s.cluster.newsPipe, s.buffer); n > 0; n, _ = unix.Read(s.cluster.newsPipe, s.buffer) {
	}
	for _, do := range s.cluster.news.take() {
		do()
	}
}

func (s *server) logLater(line string) { s.cluster.news.push(func() { fmt.Fprintln(s.out, line) }) }

// joinCluster starts the hub (without -nats or NATS_URL), the outbox, the registry and the
// joiner, and waits for none of them: the server serves its own users from the start.
func (s *server) joinCluster() {
	pipe := make([]int, 2)
	err := unix.Pipe(pipe)
	if err == nil {
		for _, fd := range pipe {
			unix.SetNonblock(fd, true)
			unix.CloseOnExec(fd)
		}
		err = s.poller.add(pipe[0])
	}
	if err != nil {
		log.Fatalf("cannot start waiting for NATS: %v", err)
	}
	s.cluster.newsPipe, s.cluster.news = pipe[0], newTodoList()
	go func() {
		for range s.cluster.news.woken {
			unix.Write(pipe[1], []byte{1})
		}
	}()
	urls := cmp.Or(s.options.nats, os.Getenv("NATS_URL")) // the flag wins, as for NATS's tools
	if urls == "" {
		urls = s.startHub()
	}
	s.cluster.ahead, s.cluster.alive = map[string][]func(){}, map[string]bool{}
	s.cluster.outbox = &outbox{todoList: newTodoList(), caughtUp: func() { s.cluster.news.push(s.caughtUp) }}
	go s.cluster.outbox.run()
	s.cluster.registry = &registry{s: s, id: nats.NewInbox()[len(nats.InboxPrefix):], lease: s.options.lease,
		todo: newTodoList(), timer: time.NewTicker(s.options.lease / 3), owned: map[string]uint64{}, stopped: make(chan struct{})}
	go s.cluster.registry.run()
	messages := make(chan *nats.Msg, 64) // past it, NATS drops them too, and says so
	go s.listen(messages)
	s.cluster.joiner = &joiner{urls: urls, stop: make(chan struct{}), say: s.logLater,
		options: []nats.Option{
			nats.Name("stage9-durable"),
			nats.NoEcho(),        // its own messages: its users heard them already
			nats.DontRandomize(), // the URLs in the order given: the nearest first
		},
		connected: func(nc *nats.Conn) {
			nc.ChanSubscribe(subjectSay, messages)
			nc.ChanSubscribe(subjectMsg+"."+s.cluster.registry.id+".*", messages)
			s.cluster.registry.todo.push(func() { s.cluster.registry.join(nc) })
		},
		lost: func(err error) { s.cluster.registry.todo.push(func() { s.cluster.registry.leave(err) }) },
	}
	go s.cluster.joiner.run()
}

// startHub starts a NATS server inside this one, with JetStream for the names, so that one
// command runs a room. It listens on every interface (the room is on other laptops), so it asks
// for a secret, without which nobody reads the room or writes to it. It returns our URL.
func (s *server) startHub() string {
	// A busy port or a bad address is said in one line, as for -addr; port 0 picks a free port.
	// SO_REUSEADDR (true) as the NATS server's listener has it: Go's net package sets it.
	probe, port, err := listenNonblocking(s.options.natsListen, true) // main.go
	if err != nil {
		log.Fatalf("cannot start NATS on %s: %v%s", s.options.natsListen, reason(err),
			strings.Replace(hint(s.options.natsListen, err, true), "-addr", "-nats-listen", 1))
	}
	unix.Close(probe)
	host, _, _ := net.SplitHostPort(s.options.natsListen)
	// Restarted with the same -nats-url-file, the same room; else 130 random bits.
	secret := cmp.Or(secretInURLFile(s.options.natsURLFile), rand.Text()) // natsurl.go
	storeDir, err := os.MkdirTemp("", "stage9-nats-")
	if err == nil {
		s.cluster.hub, err = natsserver.NewServer(&natsserver.Options{
			Host: host, Port: port, JetStream: true, StoreDir: storeDir, NoSigs: true, NoLog: true,
			Authorization: secret, // a token: NATS refuses every client that does not give it
		})
	}
	if err == nil {
		go s.cluster.hub.Start()
		if !s.cluster.hub.ReadyForConnections(10 * time.Second) {
			err = errors.New("it did not start within 10 s")
		}
	}
	os.RemoveAll(storeDir) // the names live in memory: a hub killed leaves no files behind
	if err != nil {
		log.Fatalf("cannot start NATS on %s: %v", s.options.natsListen, err)
	}
	urls := joinURLs(host, secret, port) // natsurl.go
	fmt.Fprintf(s.out, "Server: NATS for the room on port %d, with a secret; others join with\n", port)
	for _, u := range urls {
		fmt.Fprintf(s.out, "Server:   %s\n", u)
	}
	if s.options.natsURLFile != "" {
		if err := writeURLFile(s.options.natsURLFile, urls); err != nil {
			log.Fatalf("cannot write -nats-url-file: %v", err)
		}
		fmt.Fprintf(s.out, "Server: (written to %s, for NATS_URL=$(cat %[1]s))\n", s.options.natsURLFile)
	}
	return urls[0] // this machine's
}

// listen hands the loop what the room's subscriptions receive, in order, from one channel.
// What comes from a holder newer than the one the bucket shows waits for its arrival (ahead).
func (s *server) listen(messages chan *nats.Msg) {
	behind := false // said once for each run of lines dropped
	for m := range messages {
		size := int64(len(m.Data))
		if s.cluster.heard.Load()+size > fromNATS {
			if !behind {
				s.logLater("Server: this server is behind the room: lines from other servers are dropped")
			}
			behind = true
			continue
		}
		behind = false
		s.cluster.heard.Add(size)
		to := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:] // a /msg's receiver
		name, server := m.Header.Get(headerName), m.Header.Get(headerServer)
		since, _ := strconv.ParseUint(m.Header.Get(headerSince), 10, 64)
		forSince, _ := strconv.ParseUint(m.Header.Get(headerFor), 10, 64)
		var hear func()
		hear = func() {
			switch sender := s.named(name); {
			case !s.cluster.inRoom:
			case sender == nil || sender.since < since:
				s.keepAhead(name, hear)
			case !sender.remote || sender.server != server || sender.since != since:
				// From an older holder: a server that lost the name while it was paused.
			case m.Subject == subjectSay:
				s.queueForRoom(nil, m.Data[:len(m.Data):len(m.Data)]) // main.go
			default:
				s.hearMsg(s.named(to), to, forSince, m.Data)
			}
		}
		s.cluster.news.push(func() {
			s.cluster.heard.Add(-size)
			hear()
		})
	}
}

// keepAhead keeps what a new holder said until the bucket shows its entry (arrived), so that
// its arrival still comes before its first line; up to aheadPerName.
func (s *server) keepAhead(name string, hear func()) {
	if len(s.cluster.ahead[name]) == aheadPerName {
		fmt.Fprintf(s.out, "Server: dropped a line from %s, whose arrival has not come yet\n", name)
		return
	}
	s.cluster.ahead[name] = append(s.cluster.ahead[name], hear)
}

// hearMsg hands a /msg to c, the user it names, only if c is the holder its sender's server
// saw, and only while this server's lease is known to be good: a server woken from a pause
// does not hand it to a user whose name may have moved meanwhile. It waits for the lease
// (resume), or goes with the user.
func (s *server) hearMsg(c *client, to string, forSince uint64, data []byte) {
	switch {
	case c == nil || c.remote || c.since != forSince:
		fmt.Fprintf(s.out, "Server: dropped a /msg for another holder of the name %s\n", to)
	case s.speaksFor(c):
		s.send(c, string(data))
	case len(c.unheard) == unheardPerUser:
		fmt.Fprintf(s.out, "Server: dropped a /msg for %s, who waits for the lease\n", to)
	default:
		if len(c.unheard) == 0 {
			s.checkLease() // names.go
		}
		c.unheard = append(c.unheard, data)
	}
}

// tellRoom queues data from c for a subject of the room, for the outbox to publish, with who
// sends it in the headers, and for a /msg which holder of its receiver's name it is for; out of
// the room, nothing (it would be lost anyway).
// While the lease is not known good, it waits, the loop's own users having heard it already:
// it goes out once the lease is confirmed (resume), or with the user if its name is lost.
func (s *server) tellRoom(subject string, c *client, data []byte, forSince uint64) {
	if !s.cluster.inRoom {
		return
	}
	if !s.speaksFor(c) {
		if len(c.forRoom) == forRoomPerUser {
			s.notKeepingUp()
			return
		}
		if len(c.forRoom) == 0 {
			s.checkLease() // names.go
		}
		c.forRoom = append(c.forRoom, func() { s.tellRoom(subject, c, data, forSince) })
		return
	}
	header := nats.Header{}
	header.Set(headerName, c.name)
	header.Set(headerServer, s.cluster.registry.id)
	header.Set(headerSince, strconv.FormatUint(c.since, 10))
	header.Set(headerFor, strconv.FormatUint(forSince, 10))
	// Lines over what NATS carries in one message are cut between lines (onJoined checks that
	// the longest line fits).
	for limit := s.cluster.maxPayload - headroom; len(data) > limit; {
		cut := strings.LastIndexByte(string(data[:limit]), '\n') + 1
		s.publish(&nats.Msg{Subject: subject, Header: header, Data: data[:cut]})
		data = data[cut:]
	}
	s.publish(&nats.Msg{Subject: subject, Header: header, Data: data})
}

// publish hands data to the outbox, which holds the batch as the clients' queues do (never
// changed once queued: queue.go); or, if it does not fit, drops it and says so, once.
func (s *server) publish(m *nats.Msg) {
	if !s.cluster.outbox.push(m) {
		s.notKeepingUp()
	}
}

// notKeepingUp says, once, that lines for the other servers are dropped: the outbox is full,
// or NATS has not confirmed the lease for long (tellRoom).
func (s *server) notKeepingUp() {
	if !s.cluster.dropping {
		s.cluster.dropping = true
		fmt.Fprintln(s.out, "Server: NATS is not keeping up: lines for the other servers are dropped")
		s.tellHere("* The other servers are not keeping up: only the users here hear you for now\n")
	}
}

// caughtUp: the outbox is empty again, after it dropped lines (and if NATS is lost, the room
// is split: that is what the users hear).
func (s *server) caughtUp() {
	if s.cluster.dropping = false; s.cluster.inRoom {
		fmt.Fprintln(s.out, "Server: NATS keeps up again")
		s.tellHere("* The other servers hear you again (they missed what was said meanwhile)\n")
	}
}

func (s *server) tellHere(line string) {
	for _, c := range s.joined {
		if !c.remote {
			s.send(c, line)
		}
	}
}

// arrived: the bucket shows name held on server, by the holder since.
func (s *server) arrived(name, server string, since uint64) {
	c := s.named(name)
	switch {
	case !s.cluster.alive[server] || c != nil && c.since > since:
		return // a name left behind by a server whose lease ended, or an older holder's
	case c != nil && c.server == server && c.since == since:
		return
	case c != nil && c.remote:
		s.leave(c, errSilent) // its server's lease ran out, and someone else has the name now
	case c != nil: // our lease ran out (this server was paused), and someone took the name
		s.lost(c)
	}
	c = &client{fd: -1, name: name, remote: true, server: server, since: since}
	s.joined = append(s.joined, c)
	fmt.Fprintf(s.out, "Server: %s joined, on another server\n", name)
	s.announce(c, "* "+name+" has entered the room\n")
	ahead := s.cluster.ahead[name]
	delete(s.cluster.ahead, name)
	for _, hear := range ahead {
		hear()
	}
}

// lost disconnects a user of ours whose name is someone else's now.
func (s *server) lost(c *client) {
	s.disconnect(c, drop{"its name was taken on another server",
		"someone on another server has your name now"}) // limits.go
}

// gone: the bucket shows name given back by the holder before revision.
func (s *server) gone(name string, revision uint64) {
	if c := s.named(name); c != nil && c.remote && c.since < revision {
		s.leave(c, errElsewhere)
	}
}

// serverGone: the bucket shows server's lease ended; its users leave with it. If it is ours
// (this server was paused, or NATS slow), it speaks no more for its names until the registry
// has them back.
func (s *server) serverGone(server string) {
	delete(s.cluster.alive, server)
	if server == s.cluster.registry.id {
		s.cluster.goodUntil = time.Time{}
		s.cluster.registry.todo.push(s.cluster.registry.check)
		return
	}
	for _, c := range slices.Clone(s.joined) {
		if c.remote && c.server == server {
			s.leave(c, errSilent)
		}
	}
}

var errElsewhere = errors.New("on another server") // why a member elsewhere left, for the log
var errSilent = errors.New("its server stopped answering")

// onJoined: NATS at at took us on connection. Lines flow again at once, to and from the members
// who were out of reach, without waiting for the names' bucket (on a NATS cluster it may be
// electing a new leader): listed, when it comes, says who left or came meanwhile.
func (s *server) onJoined(connection, maxPayload int, at string) {
	if s.options.maxLine+len("[] \n")+32 > maxPayload-headroom { // the longest line, framed
		usageError("-max-line %d does not fit in a NATS message (%d bytes)", s.options.maxLine, maxPayload)
	}
	s.cluster.connection, s.cluster.maxPayload = connection, maxPayload
	s.cluster.shownURL, s.cluster.inRoom = at, true
	if s.cluster.wasInRoom {
		s.joined = append(s.joined, s.cluster.away...)
		fmt.Fprintf(s.out, "Server: back in the room through NATS at %s\n", at)
		s.tellHere("* The room is whole again (what was said on the other side meanwhile is lost)\n")
	}
	s.cluster.away = nil
}

// listed: the registry holds our names (at the start of a connection, after our lease ran out,
// or after NATS lost the bucket), and entries are the bucket as it is now. Those who left while
// this server was not watching leave now. If NATS lost the bucket, our users are told.
func (s *server) listed(connection int, entries []entry, bucketLost bool) {
	if !s.cluster.inRoom || connection != s.cluster.connection {
		return // stale
	}
	if !s.cluster.wasInRoom { // the first time; from now on, a lost connection is a split
		fmt.Fprintf(s.out, "Server: in the room through NATS at %s\n", s.cluster.shownURL)
		s.cluster.wasInRoom = true
	}
	if bucketLost {
		fmt.Fprintln(s.out, "Server: NATS lost the room's names: made them again, and claimed ours")
		s.tellHere("* NATS lost the room's names: this server claimed yours again\n")
	}
	clear(s.cluster.alive)
	for _, e := range entries {
		if e.name == "" {
			s.cluster.alive[e.server] = true
		}
	}
	names := slices.DeleteFunc(entries, func(e entry) bool { return e.name == "" || !s.cluster.alive[e.server] })
	slices.SortFunc(names, func(a, b entry) int { return cmp.Compare(a.since, b.since) })
	for _, c := range slices.Clone(s.joined) {
		if c.remote && !slices.Contains(names, entry{c.name, c.server, c.since}) {
			s.leave(c, errSilent) // gone while this server was not watching
		}
	}
	for _, e := range names {
		s.arrived(e.name, e.server, e.since)
	}
}

// onLost: NATS is gone. The users here talk among themselves until this server is back in the
// room; what either side says meanwhile is lost to the other (NATS keeps nothing for later).
func (s *server) onLost(err error) {
	if !s.cluster.inRoom || s.shutdown.begun {
		return
	}
	s.cluster.inRoom = false
	var here []*client
	for _, c := range s.joined {
		if c.remote {
			s.cluster.away = append(s.cluster.away, c)
		} else {
			here = append(here, c)
		}
	}
	s.joined = here // the others are out of reach, out of the room
	clear(s.cluster.ahead)
	fmt.Fprintf(s.out, "Server: lost NATS at %s (%v): the room is split\n", s.cluster.shownURL, err)
	s.tellHere("* The room is split: only the users on this server hear you, until it rejoins\n")
	for _, c := range here {
		s.resume(c) // names.go: lines held for a lease check go to the users here
	}
}

// leaveRoom, at shutdown, gives the names back: the others' watchers see the users leave.
func (s *server) leaveRoom() { s.cluster.registry.todo.push(s.cluster.registry.stop) }

// closeCluster gives the outbox and the registry a second to finish, then closes all.
func (s *server) closeCluster() {
	deadline := time.Now().Add(time.Second)
	for s.cluster.outbox.bytes.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-s.cluster.registry.stopped:
	case <-time.After(time.Until(deadline)):
	}
	close(s.cluster.joiner.stop)
	if nc := s.cluster.outbox.conn.Load(); nc != nil {
		nc.FlushTimeout(time.Second)
		nc.Close()
	}
	if s.cluster.hub != nil {
		s.cluster.hub.Shutdown()
	}
}
