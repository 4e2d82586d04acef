//go:build linux || darwin

package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// bucket has a TTL, the lease (-lease): an entry that nobody rewrites for that long expires,
// and NATS itself puts a marker in its place, which every server's watcher sees. Each server
// rewrites its own entries, with an Update that succeeds only if the entry is still the one it
// wrote. A dead server rewrites nothing: within a lease its users' names are free again.
//
// The bucket is also the room's one list of who is where. Every server watches it: a put is
// someone's arrival (or a refresh), a delete or a marker someone's departure, and the watcher
// gives them to every server in one order, the bucket's revisions. An announcement that a
// server missed cannot leave a ghost, nor hide a holder: the next entry says how things are.
//
// The lease is also a fence. A server that stops (SIGSTOP, a frozen VM) has names that run out
// while it cannot tell, and someone else may take them. So a server speaks for a name only
// while it knows its lease is good: until lease − margin after the START of the last Create or
// Update that succeeded (the bucket counts from a moment after that start). Refreshes are
// scheduled from the start of the last one, every lease/3, and no operation waits more than
// lease/10: a refresh that times out is followed by the next before the lease − margin runs
// out (1/3 + 1/3 + 1/10 < 4/5), so one slow answer never silences anyone. TestLeaseKept and
// TestPausedServer break when this rule does.
//
// Every operation on the bucket is a round trip to NATS, which the loop must not wait for. So
// the registry runs in a goroutine of its own: the loop asks (ask), the registry answers
// through the loop's news (cluster.go).

const namesBucket = "chat-names"

// leaseMargin is how long before its end a server stops trusting a lease: time for a line
// already sent to arrive before the name can change hands.
func leaseMargin(lease time.Duration) time.Duration { return lease / 5 }

// requestKind says what the loop asks of the registry.
type requestKind int

const (
	claim   requestKind = iota // name, for client
	release                    // name: its user left
	rejoin                     // NATS is back (epoch): claim our names again, learn the room
	check                      // refresh now: a user waits for its lease to be confirmed
	stop                       // shutdown: give every name back, then stop
)

type request struct {
	kind   requestKind
	name   string
	client *client // carried back with the answer, never touched here
	epoch  int
}

// claimAnswer is the registry's answer to a claim.
type claimAnswer int

const (
	granted  claimAnswer = iota // the name is the client's, across the room
	taken                       // someone has it
	alone                       // no NATS: the room is split, the name is checked here only
	noAnswer                    // NATS is there but did not answer: try again
)

// holding is one of our names in the bucket: the revision of the entry we last wrote, and of
// the one that created it (since), which says which holder of the name we are. 0: not in the
// bucket yet (claimed while the room was split).
type holding struct{ revision, since uint64 }

// registry keeps this server's names in the bucket.
type registry struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	id       string        // this server's mark on its entries
	asked    time.Duration // -lease: the bucket's TTL, if this server creates it
	lease    time.Duration // the bucket's TTL: the room's lease, whoever set it
	replicas int           // how many copies of the bucket NATS keeps
	news     *inbox

	watcher    jetstream.KeyWatcher
	seen       *atomic.Uint64 // the last revision the watcher showed, from its goroutine
	checkpoint uint64         // the bucket's last revision at the last check (checkWatcher)
	epoch      int            // the epoch of the last rejoin, which started the watcher

	mu       sync.Mutex
	requests []request
	wake     chan struct{}

	owned   map[string]holding // our names
	stopped chan struct{}      // closed when stop is done
}

// bucketConfig is the bucket every server creates, or finds.
func bucketConfig(lease time.Duration, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      namesBucket,
		Description: "who is who in the chat room of stage9-durable",
		TTL:         lease,
		// Without markers an expired entry would vanish without a trace; with them, the
		// watchers hear of it (and keep hearing for this long, for a watcher that starts late).
		LimitMarkerTTL: lease,
		Storage:        jetstream.MemoryStorage, // names live as long as their users: no disk
		// On a NATS cluster, three copies: the room keeps its names when one node dies.
		Replicas: replicas,
	}
}

func newRegistry(nc *nats.Conn, news *inbox, lease time.Duration) (*registry, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &registry{nc: nc, js: js, id: nats.NewInbox()[len(nats.InboxPrefix):], news: news,
		asked: lease, lease: lease, wake: make(chan struct{}, 1), owned: map[string]holding{},
		stopped: make(chan struct{})}, nil
}

// operation gives one operation on the bucket at most a tenth of the lease (see above).
func (r *registry) operation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.lease/10)
}

// openBucket finds the bucket, or creates it: with three copies if NATS is a cluster that can
// keep them, else one. A bucket that exists keeps its settings: its TTL is the room's lease.
func (r *registry) openBucket(ctx context.Context) error {
	kv, err := r.js.KeyValue(ctx, namesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = r.js.CreateKeyValue(ctx, bucketConfig(r.asked, 3))
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) && ctx.Err() == nil {
			// A single NATS server, or a cluster of fewer than three: one copy it is.
			kv, err = r.js.CreateKeyValue(ctx, bucketConfig(r.asked, 1))
		}
		if errors.Is(err, jetstream.ErrBucketExists) { // another server was quicker
			kv, err = r.js.KeyValue(ctx, namesBucket)
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return errors.New("JetStream is off there (start nats-server with -js)")
	case errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported):
		return errors.New("it is older than nats-server 2.11, which brought the TTLs this stage needs")
	case err != nil:
		return err
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	r.kv, r.lease, r.replicas = kv, status.TTL(), status.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas
	return nil
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

// run is the registry's goroutine. It sleeps until asked, until its names need refreshing,
// or until the watcher's check, every third of a lease: one short request to NATS.
func (r *registry) run() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var next time.Time // the next refresh, counted from the start of the last one
	var retry <-chan time.Time
	rejoining := -1 // the epoch of a rejoin that failed and waits for retry
	// checkWatcher's ticker.
	watchCheck := time.NewTicker(r.lease / 3)
	defer watchCheck.Stop()
	for {
		var refresh <-chan time.Time
		switch {
		case len(r.owned) == 0:
			next = time.Time{}
		case next.IsZero():
			next = time.Now().Add(r.lease / 3)
			fallthrough
		default:
			timer.Reset(time.Until(next))
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
				case check:
					next = time.Now().Add(r.lease / 3)
					r.refresh()
				case rejoin:
					retry, rejoining = nil, q.epoch
					if err := r.rejoin(q.epoch); err != nil {
						r.log("Server: cannot rejoin the room yet: %v; trying again", why(err))
						retry = time.After(time.Second)
					} else {
						next, rejoining = time.Now().Add(r.lease/3), -1
					}
				case stop:
					if r.watcher != nil {
						r.watcher.Stop()
					}
					for name := range r.owned {
						r.release(name)
					}
					close(r.stopped)
					return
				}
			}
		case <-refresh:
			next = time.Now().Add(r.lease / 3) // from the start of this one, whatever it takes
			r.refresh()
		case <-retry:
			r.ask(request{kind: rejoin, epoch: rejoining})
		case <-watchCheck.C:
			r.checkWatcher()
		}
	}
}

// why says what an error from the bucket means, in a few words for the log.
func why(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errors.New("NATS did not answer in time")
	}
	return err
}

func (r *registry) log(format string, args ...any) {
	r.news.push(news{kind: newsLog, data: fmt.Appendf(nil, format, args...)})
}

// confirmed is what the loop learns when a claim or refresh of name went through: the server
// may speak for it until goodUntil.
func (r *registry) confirmed(name string, h holding, start time.Time) news {
	return news{kind: newsConfirmed, name: name, from: holder{r.id, h.since}, revision: h.revision,
		goodUntil: start.Add(r.lease - leaseMargin(r.lease))}
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
		// in the bucket when NATS is back (rejoin).
		r.owned[q.name] = holding{}
		answer.claim = alone
		r.news.push(answer)
		return
	}
	ctx, cancel := r.operation()
	defer cancel()
	start := time.Now()
	revision, err := r.kv.Create(ctx, q.name, []byte(r.id))
	switch {
	case err == nil:
		h := holding{revision, revision}
		r.owned[q.name] = h
		confirmed := r.confirmed(q.name, h, start)
		answer.claim, answer.from, answer.revision, answer.goodUntil = granted, confirmed.from, revision, confirmed.goodUntil
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
	h, ok := r.owned[name]
	delete(r.owned, name)
	if !ok || h.revision == 0 || !r.nc.IsConnected() {
		return // not in the bucket: nothing to give back, or it runs out by itself
	}
	ctx, cancel := r.operation()
	defer cancel()
	r.kv.Delete(ctx, name, jetstream.LastRevision(h.revision))
}

// refresh rewrites our entries before they run out, and claims again those that ran out anyway
// (NATS was away, or this server stopped, longer than the lease). Each confirmation tells the
// loop how long it may speak for the name; a name someone else has now is lost.
func (r *registry) refresh() {
	if !r.nc.IsConnected() {
		return
	}
	for name, h := range r.owned {
		start := time.Now()
		switch h, err := r.reclaim(name, h); {
		case errors.Is(err, jetstream.ErrKeyExists):
			delete(r.owned, name)
			r.news.push(news{kind: newsLost, name: name})
		case err == nil:
			r.owned[name] = h
			r.news.push(r.confirmed(name, h, start))
		} // any other error: NATS did not answer in time; the next refresh tries again
	}
}

// entryValue is what an entry holds: our ID, and after the first write the revision that
// created it, so that a watcher that starts late still knows which holder a refresh is of.
func (r *registry) entryValue(since uint64) []byte {
	if since == 0 {
		return []byte(r.id)
	}
	return fmt.Appendf(nil, "%s %d", r.id, since)
}

// reclaim keeps name ours: it rewrites the entry if it is still ours, or creates it again if
// it ran out. It returns ErrKeyExists if someone else has the name now.
func (r *registry) reclaim(name string, h holding) (holding, error) {
	ctx, cancel := r.operation()
	defer cancel()
	if h.revision > 0 {
		revision, err := r.kv.Update(ctx, name, r.entryValue(h.since), h.revision)
		if err == nil {
			return holding{revision, h.since}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return h, err
		}
	}
	revision, err := r.kv.Create(ctx, name, r.entryValue(0))
	if err == nil {
		return holding{revision, revision}, nil
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Ours after all (an update that went through, but whose answer was lost)?
		if entry, getErr := r.kv.Get(ctx, name); getErr == nil {
			if server, since := parseEntry(entry); server == r.id {
				return holding{entry.Revision(), since}, nil
			}
		}
	}
	return h, err
}

// parseEntry reads an entry's value: the holder's server, and the revision that created it.
func parseEntry(entry jetstream.KeyValueEntry) (server string, since uint64) {
	server, sinceText, ok := strings.Cut(string(entry.Value()), " ")
	if since, _ = strconv.ParseUint(sinceText, 10, 64); !ok || since == 0 {
		since = entry.Revision() // the entry that created it
	}
	return server, since
}

// rejoin runs when NATS is back, and once at start: it finds or creates the bucket (a
// restarted NATS may have lost it), claims our names again, and watches the bucket afresh,
// sending the loop the room as it is now. It has a deadline: a NATS that answers slowly or
// goes away again must not keep the claims behind it waiting for ever.
func (r *registry) rejoin(epoch int) error {
	ctx, cancel := context.WithTimeout(context.Background(), max(r.lease, 2*time.Second))
	defer cancel()
	if err := r.openBucket(ctx); err != nil {
		return err
	}
	for name, h := range r.owned {
		start := time.Now()
		switch h, err := r.reclaim(name, h); {
		case errors.Is(err, jetstream.ErrKeyExists):
			delete(r.owned, name)
			r.news.push(news{kind: newsLost, name: name})
		case err != nil:
			return err
		default:
			r.owned[name] = h
			r.news.push(r.confirmed(name, h, start))
		}
	}
	return r.watchAfresh(ctx, epoch)
}

// watchAfresh starts a new watcher of the bucket, and sends the loop the room as it shows it.
func (r *registry) watchAfresh(ctx context.Context, epoch int) error {
	if r.watcher != nil {
		r.watcher.Stop()
	}
	watcher, err := r.kv.WatchAll(context.Background()) // it outlives this call
	if err != nil {
		return err
	}
	r.watcher, r.seen, r.epoch, r.checkpoint = watcher, &atomic.Uint64{}, epoch, 0
	// The watcher first gives every entry as it is now, then nil, then each change.
	var entries []news
	for {
		select {
		case entry := <-watcher.Updates():
			if entry != nil {
				r.seen.Store(entry.Revision())
				if n, ok := r.entryNews(entry, epoch); ok && n.kind == newsEntry {
					entries = append(entries, n)
				}
				continue
			}
			r.news.push(news{kind: newsRejoined, epoch: epoch, entries: entries})
			go r.watch(watcher, r.seen, epoch)
			return nil
		case <-ctx.Done():
			watcher.Stop()
			r.watcher = nil
			return errors.New("the names' bucket did not list the room in time")
		}
	}
}

// checkWatcher makes sure the watcher keeps up: by now it must have shown what the bucket
// held at the last check, a third of a lease ago. One that has not is stuck (its NATS node
// died, or the client library is recreating its consumer, which can take it 20 s), and the
// room's arrivals and departures would stop reaching this server meanwhile. So a new watcher
// takes over where the old one stopped, and shows every change since, in order.
func (r *registry) checkWatcher() {
	if r.watcher == nil || !r.nc.IsConnected() {
		return
	}
	ctx, cancel := r.operation()
	defer cancel()
	status, err := r.kv.Status(ctx)
	if err != nil {
		return // NATS is slow: the next check tries again
	}
	last := status.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	seen := r.seen.Load()
	if seen < r.checkpoint {
		watcher, err := r.kv.WatchAll(context.Background(), jetstream.IncludeHistory(),
			jetstream.ResumeFromRevision(seen+1))
		if err != nil {
			return
		}
		r.watcher.Stop()
		r.watcher, r.seen = watcher, &atomic.Uint64{}
		r.seen.Store(seen)
		go r.watch(watcher, r.seen, r.epoch)
	}
	r.checkpoint = last
}

// entryNews turns an entry of the bucket into news for the loop; our own puts are not news.
func (r *registry) entryNews(entry jetstream.KeyValueEntry, epoch int) (news, bool) {
	n := news{kind: newsEntry, name: entry.Key(), revision: entry.Revision(), epoch: epoch}
	switch entry.Operation() {
	case jetstream.KeyValuePut:
		server, since := parseEntry(entry)
		n.from = holder{server, since}
		return n, server != r.id
	case jetstream.KeyValuePurge:
		n.kind = newsExpired // its server stopped refreshing it
	default:
		n.kind = newsDeleted // its server gave it back
	}
	return n, true
}

// watch passes on, from its own goroutine, every change in the bucket after the snapshot.
func (r *registry) watch(w jetstream.KeyWatcher, seen *atomic.Uint64, epoch int) {
	for entry := range w.Updates() {
		if entry == nil {
			continue
		}
		seen.Store(entry.Revision())
		if n, ok := r.entryNews(entry, epoch); ok {
			r.news.push(n)
		}
	}
}

// claim starts claiming name for c, which waits, reading nothing more, until the answer comes
// back (claimed).
func (s *server) claim(c *client, name string) {
	c.claiming = true
	s.updateReads(c) // flood.go: the lines that follow stay in the socket meanwhile
	s.registry.ask(request{kind: claim, name: name, client: c})
}

// hold keeps the lines a claiming or checking client sent in the same read as its name.
func (s *server) hold(c *client, lines [][]byte) {
	for _, line := range lines {
		c.held = append(c.held, append([]byte(nil), line...))
	}
}

// claimed is the registry's answer, in the loop.
func (s *server) claimed(c *client, n news) {
	if c.disconnected || s.shuttingDown {
		if n.claim == granted || n.claim == alone {
			s.registry.ask(request{kind: release, name: n.name})
		}
		return
	}
	c.claiming = false
	switch n.claim {
	case taken:
		s.refuse(c, "* Sorry, the name "+n.name+" is taken.\n", fmt.Errorf(`name "%s" is taken`, n.name))
		return
	case noAnswer:
		s.refuse(c, "* Sorry, the room's names cannot be checked right now: try again.\n",
			fmt.Errorf("cannot claim the name %s: %v", n.name, n.err))
		return
	}
	if stale := s.named(n.name); stale != nil {
		s.leave(stale, errSilent) // the registry says its entry is gone: we missed the news
	}
	c.since, c.revision, c.goodUntil = n.from.since, n.revision, n.goodUntil
	s.enter(c, n.name) // main.go
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}

// confirmedLease is the registry's word that c still holds its name, until goodUntil: the
// lines it held while the lease was not known to be good go out now.
func (s *server) confirmedLease(n news) {
	c := s.named(n.name)
	if c == nil || c.remote {
		return // it left meanwhile; the registry gives the name back
	}
	c.since, c.revision, c.goodUntil = n.from.since, max(c.revision, n.revision), n.goodUntil
	s.resume(c)
}

// speaksFor reports whether the server may speak for c's name now: while its lease is known to
// be good. Both clocks must agree: the monotonic one, which a paused process does not stop,
// and the wall clock, which a suspended laptop's monotonic clock does not follow. In a split
// room nothing goes out to other servers: c speaks to this server's users only.
func (s *server) speaksFor(c *client) bool {
	now := time.Now()
	return s.split || now.Before(c.goodUntil) && now.Round(0).Before(c.goodUntil.Round(0))
}

// wait holds c's lines until the registry confirms its lease (or says it is lost), and asks it
// to check now rather than at the next refresh.
func (s *server) wait(c *client, lines [][]byte) {
	s.hold(c, lines)
	if !c.checking {
		c.checking = true
		s.updateReads(c)
		s.registry.ask(request{kind: check})
	}
}

// resume sends the lines c held while its lease was being checked, if it may speak now.
func (s *server) resume(c *client) {
	if !c.checking || !s.speaksFor(c) {
		return
	}
	c.checking = false
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}
