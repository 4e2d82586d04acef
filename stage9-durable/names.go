//go:build linux || darwin

package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
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
// A name must also come back when its server dies without a word (kill -9, a laptop lid). So
// each server has one key of its own in the bucket, servers.ID, its lease: written with a TTL
// (-lease), and rewritten every third of a lease while the server lives. A dead server rewrites
// nothing: within a lease its key expires, NATS puts a marker in its place, and every server's
// watcher sees its users leave. The names point at their server and are never rewritten: a
// name whose server's key is gone is free, and the next server asked for it takes it over. So
// keeping a room of 1,000 users costs NATS what keeping one costs: one write per server per
// third of a lease (TestRefreshCost).
//
// The bucket is also the room's one list of who is where. Every server watches it: a put is
// someone's arrival, a delete someone's departure, a server's key gone all of its users'; the
// watcher gives them to every server in one order, the bucket's revisions.
//
// The lease is also a fence. A server that stops (SIGSTOP, a frozen VM) has a key that runs
// out while it cannot tell, and someone else may take its names. So a server speaks for its
// names only while it knows its lease is good: until lease − margin after the START of the
// last write of its key that succeeded (the bucket counts from a moment after that start).
// Writes are scheduled from the start of the last one, every lease/3, and none waits more
// than lease/10 (refreshTimeout): a write that times out is followed by the next before the
// lease − margin runs out (1/3 + 1/3 + 1/10 < 4/5). TestLeaseKept and TestPausedServer break
// when this rule does.
//
// Every operation on the bucket is a round trip to NATS, which the loop must not wait for. So
// the registry runs in a goroutine of its own: the loop asks (ask), the registry answers
// through the loop's news (cluster.go).

const (
	namesBucket = "chat-names"
	// serverKeys is where the servers' leases are: servers.ID. A name is letters and digits
	// only (legalName), so no name can be mistaken for one.
	serverKeys = "servers."
)

// leaseMargin is how long before its end a server stops trusting a lease: time for a line
// already sent to arrive before the name can change hands.
func leaseMargin(lease time.Duration) time.Duration { return lease / 5 }

// refreshTimeout bounds one operation on the bucket: a tenth of a lease, so that a refresh
// that gets no answer still leaves time for the next one before the lease is no longer
// trusted (see above). At the limit, the operation counts as failed: a claim is told to try
// again, a refresh waits for the next (TestRefreshTimeout).
func refreshTimeout(lease time.Duration) time.Duration { return lease / 10 }

// rejoinTimeout bounds a rejoin: long enough for NATS to list a room of thousands, short
// enough that the claims that wait behind a rejoin that cannot succeed yet (a NATS cluster
// electing a new leader for the bucket) wait no longer. At the limit, the rejoin is tried
// again a second later, and the claims that waited are answered in between
// (TestNATSCluster).
const rejoinTimeout = 2 * time.Second

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

// registry keeps this server's lease and names in the bucket.
type registry struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	id       string        // this server's mark on its entries
	lease    time.Duration // -lease: the TTL of this server's key
	replicas int           // how many copies of the bucket NATS keeps
	created  time.Time     // when NATS made the bucket: another time means it lost the first
	news     *inbox

	watcher    jetstream.KeyWatcher
	seen       *atomic.Uint64 // the last revision the watcher showed, from its goroutine
	checkpoint uint64         // the bucket's last revision at the last check (replaceStalledWatcher)
	epoch      int            // the epoch of the last rejoin, which started the watcher
	failed     string         // why the last rejoin failed, said once until it changes

	mu       sync.Mutex
	requests []request
	wake     chan struct{}

	leaseKey uint64            // the revision of our key as we last wrote it; 0: none yet
	owned    map[string]uint64 // our names, and the revision of the entry that gave each to us
	stopped  chan struct{}     // closed when stop is done
}

// bucketConfig is the bucket every server creates, or finds.
func bucketConfig(lease time.Duration, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      namesBucket,
		Description: "who is who in the chat room of stage9-durable",
		// Keys may carry a TTL of their own (the servers' leases), and one that expires
		// leaves a marker, kept this long, which the watchers hear of.
		LimitMarkerTTL: lease,
		Storage:        jetstream.MemoryStorage, // names live as long as their users: no disk
		Replicas:       replicas,
	}
}

func newRegistry(nc *nats.Conn, news *inbox, lease time.Duration) (*registry, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &registry{nc: nc, js: js, id: nats.NewInbox()[len(nats.InboxPrefix):], news: news,
		lease: lease, wake: make(chan struct{}, 1), owned: map[string]uint64{},
		stopped: make(chan struct{})}, nil
}

// operation gives one operation on the bucket its refreshTimeout.
func (r *registry) operation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), refreshTimeout(r.lease))
}

// errCopies says that a NATS cluster did not give the bucket three copies.
var errCopies = errors.New("NATS cannot keep three copies of the room's names")

// openBucket finds the bucket, or creates it. On a NATS cluster it has three copies, so that
// the room keeps its names when a node dies; a cluster that cannot give them now (a node is
// down) gets asked again, never settled with fewer for good. A single NATS server keeps one.
// It reports whether NATS lost the bucket the registry used before (deleted, or a NATS
// restarted without its memory).
func (r *registry) openBucket(ctx context.Context) (lost bool, err error) {
	kv, err := r.js.KeyValue(ctx, namesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		replicas := 1
		if r.nc.ConnectedClusterName() != "" {
			replicas = 3
		}
		kv, err = r.js.CreateKeyValue(ctx, bucketConfig(r.lease, replicas))
		if errors.Is(err, jetstream.ErrBucketExists) { // another server was quicker
			kv, err = r.js.KeyValue(ctx, namesBucket)
		} else if err != nil && replicas == 3 {
			err = fmt.Errorf("%w: %s", errCopies, natsSays(err))
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return false, errors.New("JetStream is off there (start nats-server with -js)")
	case errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported):
		return false, errors.New("it is older than nats-server 2.11, which brought the TTLs this stage needs")
	case err != nil:
		return false, err
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return false, err
	}
	info := status.(*jetstream.KeyValueBucketStatus).StreamInfo()
	lost = !r.created.IsZero() && !info.Created.Equal(r.created)
	r.kv, r.replicas, r.created = kv, info.Config.Replicas, info.Created
	return lost, nil
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

// serve is the registry's goroutine. It sleeps until asked, until its lease needs rewriting,
// until a failed rejoin is due again, or until the watcher's check.
func (r *registry) serve() {
	var next time.Time // the next refresh, counted from the start of the last one
	refresh := time.NewTimer(r.lease / 3)
	var retry <-chan time.Time
	rejoining := -1 // the epoch of a rejoin that failed and waits for retry
	watchCheck := time.NewTicker(watchCheckEvery)
	defer watchCheck.Stop()
	// again rejoins for epoch, and on failure says why and tries again in a second.
	again := func(epoch int) {
		retry, rejoining = nil, epoch
		if err := r.rejoin(epoch); err != nil {
			if why := why(err).Error(); why != r.failed {
				r.failed = why
				r.log("Server: cannot rejoin the room yet: %s; trying again every second", why)
			}
			retry = time.After(time.Second)
			return
		}
		r.failed, rejoining = "", -1
		next = time.Now().Add(r.lease / 3)
		refresh.Reset(time.Until(next))
	}
	for {
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
					if r.refresh() != nil {
						again(r.epoch)
					}
				case rejoin:
					again(q.epoch)
				case stop:
					r.stop()
					return
				}
			}
		case <-refresh.C:
			next = time.Now().Add(r.lease / 3) // from the start of this one, whatever it takes
			refresh.Reset(time.Until(next))
			if rejoining < 0 && r.refresh() != nil {
				again(r.epoch)
			}
		case <-retry:
			again(rejoining)
		case <-watchCheck.C:
			r.replaceStalledWatcher()
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

// natsSays is what NATS said, without the client library's codes.
func natsSays(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Description
	}
	return why(err).Error()
}

func (r *registry) log(format string, args ...any) {
	r.news.push(news{kind: newsLog, data: fmt.Appendf(nil, format, args...)})
}

// leaseGood is what the loop learns when the server's key was written: it may speak for its
// names until lease − margin after start.
func (r *registry) leaseGood(start time.Time) news {
	return news{kind: newsLeaseGood, goodUntil: start.Add(r.lease - leaseMargin(r.lease))}
}

// errLapsed says that this server's key ran out, or is gone with the bucket: the other servers
// saw our users leave, and our names may be anyone's.
var errLapsed = errors.New("this server's lease ran out")

// rewriteLease writes our key again, with its TTL, if it is still the one we wrote last.
func (r *registry) rewriteLease(ctx context.Context) error {
	if r.leaseKey == 0 {
		return errLapsed
	}
	ack, err := r.js.PublishMsg(ctx, &nats.Msg{Subject: "$KV." + namesBucket + "." + serverKeys + r.id,
		Data: []byte(r.id)}, jetstream.WithMsgTTL(r.lease), jetstream.WithExpectLastSequencePerSubject(r.leaseKey),
		jetstream.WithRetryAttempts(0)) // no bucket there: say so now, rather than time out
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		r.leaseKey = ack.Sequence
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		r.leaseKey, err = 0, errLapsed
	}
	return err
}

// refresh rewrites our key: one write, however many names the server holds. A key that ran
// out, or a bucket that is gone, is an error: serve then rejoins, which claims our names
// again. A refresh that NATS did not answer in time is no error: the next one tries again.
func (r *registry) refresh() error {
	if !r.nc.IsConnected() {
		return nil
	}
	ctx, cancel := r.operation()
	defer cancel()
	start := time.Now()
	if err := r.rewriteLease(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil
		}
		return err
	}
	r.news.push(r.leaseGood(start))
	return nil
}

// claim asks the bucket for q.name, and answers the loop.
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
		r.owned[q.name] = 0
		answer.claim = alone
		r.news.push(answer)
		return
	}
	ctx, cancel := r.operation()
	defer cancel()
	revision, err := r.takeName(ctx, q.name, 0)
	switch {
	case err == nil:
		r.owned[q.name] = revision
		answer.claim, answer.from = granted, holder{r.id, revision}
	case errors.Is(err, jetstream.ErrKeyExists):
		answer.claim = taken
	default:
		answer.claim, answer.err = noAnswer, err
	}
	r.news.push(answer)
}

// takeName makes name ours: the entry we hold (since), rewritten so that the watchers see us
// arrive again; or a new entry if there is none; or the entry of a server whose lease ran
// out, taken over. Each step succeeds only if the entry is still what we saw, so that of two
// servers that try at once exactly one wins. It returns ErrKeyExists if a living server holds
// the name.
func (r *registry) takeName(ctx context.Context, name string, since uint64) (uint64, error) {
	if since > 0 {
		if revision, err := r.kv.Update(ctx, name, []byte(r.id), since); err == nil {
			return revision, nil
		}
	}
	revision, err := r.kv.Create(ctx, name, []byte(r.id))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return revision, err
	}
	entry, err := r.kv.Get(ctx, name)
	if err != nil {
		return 0, err
	}
	server := string(entry.Value())
	if _, err := r.kv.Get(ctx, serverKeys+server); server == r.id || !errors.Is(err, jetstream.ErrKeyNotFound) {
		if err == nil || server == r.id {
			err = jetstream.ErrKeyExists
		}
		return 0, err
	}
	return r.kv.Update(ctx, name, []byte(r.id), entry.Revision()) // its server is gone
}

// release gives a name back. It deletes the entry only if it is still ours: after a split,
// the name may be someone else's by now.
func (r *registry) release(name string) {
	since, ok := r.owned[name]
	delete(r.owned, name)
	if !ok || since == 0 || !r.nc.IsConnected() {
		return // not in the bucket: nothing to give back, or its server's lease frees it
	}
	ctx, cancel := r.operation()
	defer cancel()
	r.kv.Delete(ctx, name, jetstream.LastRevision(since))
}

// stop gives every name back, and the lease, at shutdown.
func (r *registry) stop() {
	if r.watcher != nil {
		r.watcher.Stop()
	}
	for name := range r.owned {
		r.release(name)
	}
	if r.leaseKey > 0 && r.nc.IsConnected() {
		ctx, cancel := r.operation()
		r.kv.Delete(ctx, serverKeys+r.id, jetstream.LastRevision(r.leaseKey))
		cancel()
	}
	close(r.stopped)
}

// rejoin runs once at start, when NATS is back, and when our lease ran out or the bucket is
// gone: it finds or creates the bucket, writes our key, claims our names again if the others
// may have seen them go, and watches the bucket afresh, sending the loop the room as it is
// now. It has a deadline: a NATS that answers slowly or goes away again must not keep the
// claims behind it waiting for ever.
func (r *registry) rejoin(epoch int) error {
	ctx, cancel := context.WithTimeout(context.Background(), rejoinTimeout)
	defer cancel()
	lost, err := r.openBucket(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	err = r.rewriteLease(ctx)
	lapsed := errors.Is(err, errLapsed)
	if lapsed {
		r.leaseKey, err = r.kv.Create(ctx, serverKeys+r.id, []byte(r.id), jetstream.KeyTTL(r.lease))
	}
	if err != nil {
		return err
	}
	// In the order they were granted (those claimed while split last), which the new entries
	// keep: /who lists the room as before.
	order := func(name string) uint64 { return cmp.Or(r.owned[name], math.MaxUint64) }
	for _, name := range slices.SortedFunc(maps.Keys(r.owned), func(a, b string) int { return cmp.Compare(order(a), order(b)) }) {
		since := r.owned[name]
		if !lapsed && since > 0 {
			continue // its entry still points at our key, which never ran out: still ours
		}
		switch revision, err := r.takeName(ctx, name, since); {
		case errors.Is(err, jetstream.ErrKeyExists):
			delete(r.owned, name)
			r.news.push(news{kind: newsLost, name: name})
		case err != nil:
			return err
		default:
			r.owned[name] = revision
			r.news.push(news{kind: newsConfirmed, name: name, from: holder{r.id, revision}})
		}
	}
	r.news.push(r.leaseGood(start))
	return r.watchAfresh(ctx, epoch, lost)
}

// watchAfresh starts a new watcher of the bucket, and sends the loop the room as it shows it.
func (r *registry) watchAfresh(ctx context.Context, epoch int, lost bool) error {
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
				if n, ok := r.entryNews(entry, epoch); ok && n.kind != newsDeleted && n.kind != newsServerGone {
					entries = append(entries, n)
				}
				continue
			}
			r.news.push(news{kind: newsRejoined, epoch: epoch, entries: entries, lost: lost})
			go r.watch(watcher, r.seen, epoch)
			return nil
		case <-ctx.Done():
			watcher.Stop()
			r.watcher = nil
			return errors.New("the names' bucket did not list the room in time")
		}
	}
}

// watchCheckEvery is how often the registry checks that its watcher keeps up: one short
// request to NATS, a read. A stall is noticed at the second check after it began, so within
// two of these (TestNATSCluster).
const watchCheckEvery = time.Second

// replaceStalledWatcher makes sure the watcher keeps up: by now it must have shown what the
// bucket held at the last check. One that has not is stuck (its NATS node died, or the client
// library is recreating its consumer, which can take it 20 s), and the room's arrivals and
// departures would stop reaching this server meanwhile. So a new watcher takes over where the
// old one stopped, and shows every change since, in order.
func (r *registry) replaceStalledWatcher() {
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

// entryNews turns an entry of the bucket into news for the loop; our own names are not news.
func (r *registry) entryNews(entry jetstream.KeyValueEntry, epoch int) (news, bool) {
	n := news{kind: newsEntry, name: entry.Key(), revision: entry.Revision(), epoch: epoch}
	put := entry.Operation() == jetstream.KeyValuePut
	if server, ok := strings.CutPrefix(entry.Key(), serverKeys); ok {
		n.name, n.from.server = "", server
		if n.kind = newsServerUp; !put {
			n.kind = newsServerGone // its lease ran out, or it gave it back
		}
		return n, true
	}
	if !put {
		n.kind = newsDeleted // its server gave it back
		return n, true
	}
	n.from = holder{string(entry.Value()), entry.Revision()}
	return n, n.from.server != r.id
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
	c.since = n.from.since
	s.enter(c, n.name) // main.go
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}

// confirmed is the registry's word that one of our names is ours again, after our lease ran
// out or NATS was away: since says which holder it is now.
func (s *server) confirmed(n news) {
	if c := s.named(n.name); c != nil && !c.remote {
		c.since = n.from.since
	}
}

// leaseGood is the registry's word that this server's key was rewritten: it may speak for its
// names until goodUntil, and the lines its users held meanwhile go out now.
func (s *server) leaseGood(n news) {
	s.goodUntil = n.goodUntil
	for _, c := range s.joined {
		if !c.remote {
			s.resume(c)
		}
	}
}

// speaksFor reports whether the server may speak for c's name now: while its lease is known to
// be good. Both clocks must agree: the monotonic one, which a paused process does not stop,
// and the wall clock, which a suspended laptop's monotonic clock does not follow. In a split
// room nothing goes out to other servers: c speaks to this server's users only.
func (s *server) speaksFor(c *client) bool {
	now := time.Now()
	return s.split || c.since > 0 && now.Before(s.goodUntil) && now.Round(0).Before(s.goodUntil.Round(0))
}

// wait holds c's lines until the registry confirms the lease (or says the name is lost), and
// asks it to check now rather than at the next refresh.
func (s *server) wait(c *client, lines [][]byte) {
	s.hold(c, lines)
	if !c.checking {
		c.checking = true
		s.updateReads(c)
		s.registry.ask(request{kind: check})
	}
}

// resume sends the lines c held while the lease was being checked, and the /msg it was sent
// meanwhile, if it may speak now.
func (s *server) resume(c *client) {
	if !c.checking || !s.speaksFor(c) {
		return
	}
	c.checking = false
	s.updateReads(c)
	for _, line := range c.unheard {
		s.send(c, string(line))
	}
	held := c.held
	c.held, c.unheard = nil, nil
	s.route(c, held)
}
