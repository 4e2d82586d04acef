//go:build linux || darwin

package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// One name, one person, across the room. Two users who ask two servers for "alice" at the same
// instant must not both get it, and no server can decide that alone. NATS has the atomic step
// we need: JetStream's key-value buckets, where Create writes a key only if it does not exist,
// and exactly one of two Creates of one key succeeds. So the room's names are keys in a bucket,
// each holding the ID of the server its user is on.
//
// A name must also come back when its server dies without a word (kill -9, a laptop lid). The
// bucket has a TTL: an entry that nobody rewrites for nameTTL expires, and NATS itself puts a
// marker in its place, which every server's watcher sees. Each server rewrites its own entries
// every refreshEvery, with an Update that succeeds only if the entry is still the one it
// wrote. A dead server rewrites nothing: within nameTTL its users' names are free again, and
// the other servers announce their departure when they see the markers.
//
// Every operation on the bucket is a round trip to NATS, which the loop must not wait for. So
// the registry runs in a goroutine of its own: the loop asks (ask), the registry answers
// through the loop's news (cluster.go).

const (
	namesBucket  = "chat-names"
	nameTTL      = 5 * time.Second
	refreshEvery = nameTTL / 3 // two refreshes may fail before an entry runs out
)

// requestKind says what the loop asks of the registry.
type requestKind int

const (
	claim   requestKind = iota // name, for client
	release                    // name: its user left
	rejoin                     // NATS is back: claim our names again, learn the room
	stop                       // shutdown: give every name back, then stop
)

type request struct {
	kind   requestKind
	name   string
	client *client // carried back with the answer, never touched here
}

// claimAnswer is the registry's answer to a claim.
type claimAnswer int

const (
	granted  claimAnswer = iota // the name is the client's, across the room
	taken                       // someone has it
	alone                       // no NATS: the room is split, the name is checked here only
	noAnswer                    // NATS is there but did not answer: try again
)

// registry keeps this server's names in the bucket.
type registry struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	id      string // this server's mark on its entries
	news    *inbox
	watcher jetstream.KeyWatcher

	mu       sync.Mutex
	requests []request
	wake     chan struct{}

	owned   map[string]uint64 // our names and their revisions; 0: not in the bucket yet
	stopped chan struct{}     // closed when stop is done
}

// bucketConfig is the bucket every server creates, or finds: the same settings from all.
var bucketConfig = jetstream.KeyValueConfig{
	Bucket:      namesBucket,
	Description: "who is who in the chat room of stage8-cluster",
	TTL:         nameTTL,
	// Without markers an expired entry would vanish without a trace; with them, the watchers
	// hear of it (and keep hearing for this long, for a watcher that starts late).
	LimitMarkerTTL: nameTTL,
	Storage:        jetstream.MemoryStorage, // names live as long as their users: no disk
}

func newRegistry(nc *nats.Conn, news *inbox) (*registry, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	r := &registry{nc: nc, js: js, id: nats.NewInbox()[len(nats.InboxPrefix):], news: news,
		wake: make(chan struct{}, 1), owned: map[string]uint64{}, stopped: make(chan struct{})}
	ctx, cancel := bucketOperation()
	defer cancel()
	r.kv, err = js.CreateOrUpdateKeyValue(ctx, bucketConfig)
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return nil, errors.New("JetStream is off there (start nats-server with -js)")
	case errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported):
		return nil, errors.New("it is older than nats-server 2.11, which brought the TTLs this stage needs")
	}
	return r, err
}

// ask queues a request for the registry; it never waits.
func (r *registry) ask(q request) {
	r.mu.Lock()
	r.requests = append(r.requests, q)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default: // woken already
	}
}

// run is the registry's goroutine. It sleeps until asked, or until its names need refreshing:
// a server without users has no timer running at all.
func (r *registry) run() {
	timer := time.NewTimer(refreshEvery)
	timer.Stop()
	var refresh, retry <-chan time.Time
	for {
		if refresh == nil && len(r.owned) > 0 {
			timer.Reset(refreshEvery)
			refresh = timer.C
		}
		select {
		case <-r.wake:
			r.mu.Lock()
			requests := r.requests
			r.requests = nil
			r.mu.Unlock()
			for _, q := range requests {
				switch q.kind {
				case claim:
					r.claim(q)
				case release:
					r.release(q.name)
				case rejoin:
					retry = nil
					if err := r.rejoin(); err != nil {
						r.log("Server: cannot rejoin the room yet: %v", err)
						retry = time.After(time.Second)
					}
				case stop:
					for name := range r.owned {
						r.release(name)
					}
					close(r.stopped)
					return
				}
			}
		case <-refresh:
			refresh = nil
			r.refresh()
		case <-retry:
			r.ask(request{kind: rejoin})
		}
	}
}

func (r *registry) log(format string, args ...any) {
	r.news.push(news{kind: newsLog, data: fmt.Appendf(nil, format, args...)})
}

// claim asks the bucket for q.name: create-if-absent, so exactly one claim of a name wins.
func (r *registry) claim(q request) {
	answer := news{kind: newsClaimed, name: q.name, client: q.client}
	if _, mine := r.owned[q.name]; mine {
		answer.claim = taken // by a user of this server who is still claiming it, or alone
		r.news.push(answer)
		return
	}
	if !r.nc.IsConnected() {
		// The room is split: the server can check only its own users, and claims the name
		// in the bucket when NATS is back (refresh, rejoin).
		r.owned[q.name] = 0
		answer.claim = alone
		r.news.push(answer)
		return
	}
	ctx, cancel := bucketOperation()
	defer cancel()
	revision, err := r.kv.Create(ctx, q.name, []byte(r.id))
	switch {
	case err == nil:
		r.owned[q.name] = revision
		answer.claim, answer.revision = granted, revision
	case errors.Is(err, jetstream.ErrKeyExists):
		answer.claim = taken
	default:
		answer.claim, answer.err = noAnswer, err
	}
	r.news.push(answer)
}

// release gives a name back. It deletes the entry only if it is still ours: after a split,
// the name may be someone else's by now.
func (r *registry) release(name string) {
	revision, ok := r.owned[name]
	delete(r.owned, name)
	if !ok || revision == 0 || !r.nc.IsConnected() {
		return // not in the bucket: nothing to give back, or it runs out by itself
	}
	ctx, cancel := bucketOperation()
	defer cancel()
	r.kv.Delete(ctx, name, jetstream.LastRevision(revision))
}

// refresh rewrites our entries before they run out, and claims again those that ran out anyway
// (NATS was away longer than nameTTL).
func (r *registry) refresh() {
	if !r.nc.IsConnected() {
		return
	}
	for name, revision := range r.owned {
		if revision, again, ok := r.reclaim(name, revision); !ok {
			delete(r.owned, name)
			r.news.push(news{kind: newsLost, name: name})
		} else if r.owned[name] = revision; again {
			r.news.push(news{kind: newsReclaimed, name: name, revision: revision})
		}
	}
}

// reclaim keeps name ours: it rewrites the entry if it is still ours, or creates it again if
// it ran out. It reports the new revision, whether the entry had to be created again, and
// false if someone else has the name now. An error from NATS keeps the old revision: the
// next refresh tries again.
func (r *registry) reclaim(name string, revision uint64) (newRevision uint64, again, ok bool) {
	ctx, cancel := bucketOperation()
	defer cancel()
	if revision > 0 {
		newRevision, err := r.kv.Update(ctx, name, []byte(r.id), revision)
		if err == nil {
			return newRevision, false, true
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return revision, false, true
		}
	}
	newRevision, err := r.kv.Create(ctx, name, []byte(r.id))
	switch {
	case err == nil:
		return newRevision, true, true
	case errors.Is(err, jetstream.ErrKeyExists):
		// Ours after all (an update that went through, but whose answer was lost)?
		if entry, err := r.kv.Get(ctx, name); err == nil && string(entry.Value()) == r.id {
			return entry.Revision(), false, true
		}
		return 0, false, false
	}
	return revision, false, true
}

// rejoin runs when NATS is back, and once at start: it finds or creates the bucket (a
// restarted NATS may have lost it), claims our names again, and watches the bucket afresh,
// sending the loop the room as it is now.
func (r *registry) rejoin() error {
	ctx, cancel := bucketOperation()
	defer cancel()
	kv, err := r.js.CreateOrUpdateKeyValue(ctx, bucketConfig)
	if err != nil {
		return err
	}
	r.kv = kv
	ours := map[string]uint64{}
	for name, revision := range r.owned {
		if revision, _, ok := r.reclaim(name, revision); ok {
			r.owned[name], ours[name] = revision, revision
		} else {
			delete(r.owned, name)
			r.news.push(news{kind: newsLost, name: name})
		}
	}
	if r.watcher != nil {
		r.watcher.Stop()
	}
	r.watcher, err = kv.WatchAll(context.Background()) // it outlives this call
	if err != nil {
		return err
	}
	// The watcher first gives every entry as it is now, then nil, then each change.
	var members []member
	for entry := range r.watcher.Updates() {
		if entry == nil {
			break
		}
		if entry.Operation() == jetstream.KeyValuePut && string(entry.Value()) != r.id {
			members = append(members, member{entry.Key(), string(entry.Value()), entry.Revision()})
		}
	}
	go r.watch(r.watcher)
	r.news.push(news{kind: newsRejoined, members: members, ours: ours})
	return nil
}

// watch passes on, from its own goroutine, the entries that run out: their servers stopped
// refreshing them. Entries deleted by their servers are not news: those servers announce
// departures themselves, in order with their users' last lines.
func (r *registry) watch(w jetstream.KeyWatcher) {
	for entry := range w.Updates() {
		if entry != nil && entry.Operation() == jetstream.KeyValuePurge {
			r.news.push(news{kind: newsExpired, name: entry.Key(), revision: entry.Revision()})
		}
	}
}

// claim starts claiming name for c, which waits, reading nothing more, until the answer comes
// back (claimed).
func (s *server) claim(c *client, name string) {
	c.claiming = true
	s.poller.remove(c.fd) // the lines that follow stay in the socket meanwhile
	s.registry.ask(request{kind: claim, name: name, client: c})
}

// hold keeps the lines a claiming client sent in the same read as its name.
func (s *server) hold(c *client, lines [][]byte) {
	for _, line := range lines {
		c.held = append(c.held, append([]byte(nil), line...))
	}
}

// claimed is the registry's answer, in the loop.
func (s *server) claimed(c *client, name string, revision uint64, answer claimAnswer, err error) {
	if c.disconnected || s.shuttingDown {
		if answer == granted || answer == alone {
			s.registry.ask(request{kind: release, name: name})
		}
		return
	}
	c.claiming = false
	switch answer {
	case taken:
		s.refuse(c, "* Sorry, the name "+name+" is taken.\n", fmt.Errorf(`name "%s" is taken`, name))
		return
	case noAnswer:
		s.refuse(c, "* Sorry, the room's names cannot be checked right now: try again.\n",
			fmt.Errorf("cannot claim the name %s: %v", name, err))
		return
	}
	if stale := s.named(name); stale != nil {
		s.leave(stale, errSilent) // the registry says its entry is gone: we missed the news
	}
	c.revision = revision
	s.enter(c, name) // main.go
	if err := s.poller.add(c.fd); err != nil {
		s.disconnect(c, err)
		return
	}
	if c.watchingWrites {
		s.poller.watchWrites(c.fd, true)
	}
	held := c.held
	c.held = nil
	s.route(c, held)
}
