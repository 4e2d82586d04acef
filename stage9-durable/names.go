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
// (-lease), and written again every third of a lease while the server lives. A dead server
// writes nothing: within a lease its key expires, NATS puts a marker in its place, and every
// server's watcher sees its users leave. The names point at their server and are written once:
// a name whose server's key is gone is free, and the next server asked for it takes it over.
// So keeping a room of 1,000 users costs NATS what keeping one costs: one write per server per
// third of a lease (TestRefreshCost).
//
// The bucket is also the room's list of who is where. Every server watches it: a new entry is
// someone's arrival, a deleted or expired one a departure, in the bucket's order.
//
// The lease is also a fence. A server that stops (SIGSTOP, a frozen VM) has a key that runs
// out while it cannot tell, and someone else may take its names. So a server speaks for its
// names only while it knows its lease is good: until lease − margin after the START of the
// last write of its key that succeeded (the bucket counts from a moment after that start).
// Writes come every lease/3, and none waits more than answerWithin: a write that times out is
// followed by the next before lease − margin runs out (1/3 + 1/3 + 1/10 < 4/5).
// TestLeaseKept and TestPausedServer break when this rule does.
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

// defaultLease is -lease's default: a name outlives its server's silence by 5 s, long enough
// for a busy laptop's refreshes, short enough that a name is free again soon after.
const defaultLease = 5 * time.Second

// leaseMargin is how long before its end a server stops trusting its lease: time for a line
// already sent to arrive before the name can change hands.
func leaseMargin(lease time.Duration) time.Duration { return lease / 5 }

// answerWithin is how long one operation on the bucket may take: a tenth of the lease. A
// refresh that gets no answer in time is followed by the next a third of a lease later, and
// both fit in the lease (1/3 + 1/3 + 1/10 < 1); a newcomer whose claim gets no answer is told
// to try again after that long, not left waiting on a NATS that is stopped.
func answerWithin(lease time.Duration) time.Duration { return lease / 10 }

// joinWithin is how long joining the room may take (the bucket, our names again, the list of
// who is there): past it, the join is tried again a second later, and the claims that wait
// behind it (a NATS cluster electing a new leader for the bucket) are answered in between.
const joinWithin = 2 * time.Second

// watchCheckEvery is how often the registry checks that its watcher keeps up: one short
// request to NATS, a read. A stall is noticed at the second check after it began.
const watchCheckEvery = time.Second

// requestKind says what the loop, or the joiner, asks of the registry.
type requestKind int

const (
	claim     requestKind = iota // name, for client
	release                      // name: its user left
	connected                    // NATS took us (nc): join the room
	lost                         // NATS let nc go (err)
	check                        // write our lease now: a user waits for it to be confirmed
	stop                         // shutdown: give every name back, then stop
)

type request struct {
	kind   requestKind
	name   string
	client *client // carried back with the answer, never touched here
	nc     *nats.Conn
	err    error
}

// claimAnswer is the registry's answer to a claim.
type claimAnswer int

const (
	granted  claimAnswer = iota // the name is the client's, across the room
	taken                       // someone has it
	noAnswer                    // NATS is away, or did not answer: try again
)

// registry keeps this server's names in the bucket.
type registry struct {
	id     string        // this server's mark on its entries
	lease  time.Duration // -lease: the TTL of this server's key
	news   *inbox
	outbox *outbox

	mu       sync.Mutex
	requests []request
	wake     chan struct{}

	// The rest belongs to run's goroutine.
	nc         *nats.Conn
	js         jetstream.JetStream
	kv         jetstream.KeyValue // nil while out of the room
	created    time.Time          // when NATS made the bucket: another time means it lost the first
	watcher    jetstream.KeyWatcher
	seen       *atomic.Uint64    // the last revision the watcher showed, from its goroutine
	checkpoint uint64            // the bucket's last revision at the last check
	connection int               // counts the connections: news from an older one is stale
	leaseKey   uint64            // the revision of our key as we last wrote it; 0: none
	owned      map[string]uint64 // our names, and the revision of the entry we last wrote
	said       string            // why joining failed, as last logged
	stopped    chan struct{}     // closed when stop is done
}

func newRegistry(news *inbox, lease time.Duration, out *outbox) *registry {
	return &registry{id: nats.NewInbox()[len(nats.InboxPrefix):], lease: lease,
		news: news, outbox: out, wake: make(chan struct{}, 1), owned: map[string]uint64{},
		stopped: make(chan struct{})}
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

// run is the registry's goroutine. It sleeps until asked, until its lease needs writing, until
// a join that failed is due again, or until the watcher's check.
func (r *registry) run() {
	refresh := time.NewTicker(r.lease / 3)
	defer refresh.Stop()
	watchCheck := time.NewTicker(watchCheckEvery)
	defer watchCheck.Stop()
	var retry <-chan time.Time // a join that failed, due again
	for {
		select {
		case <-refresh.C:
			if retry == nil && r.refresh() != nil {
				retry = r.join()
			}
			continue
		case <-watchCheck.C:
			r.replaceStalledWatcher()
			continue
		case <-retry:
			retry = r.join()
			continue
		case <-r.wake:
		}
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
			case connected:
				r.connect(q.nc)
				retry = r.join()
			case lost:
				r.leave(q.nc, q.err)
				retry = nil
			case check:
				if retry == nil && r.refresh() != nil {
					retry = r.join()
				}
			case stop:
				r.stop()
				return
			}
		}
	}
}

// connect takes a new connection, and tells the loop at once: lines flow again before the
// names' bucket answers, which on a NATS cluster may be electing a new leader.
func (r *registry) connect(nc *nats.Conn) {
	// Our subscriptions first reach NATS: a server that says it is back hears what is said.
	nc.FlushTimeout(answerWithin(r.lease))
	r.nc, r.kv = nc, nil
	r.js, _ = jetstream.New(nc) // fails only without a connection
	r.connection++
	r.outbox.conn.Store(nc)
	r.news.push(news{kind: newsOnline, connection: r.connection,
		maxPayload: int(nc.MaxPayload()), url: connectedTo(nc)})
}

// join writes our lease and our names into the bucket (made again if NATS lost it), and lists
// the room for the loop. It runs on each new connection, when our lease ran out, and when the
// bucket is gone. If it fails, it says why (once) and returns when to try again.
func (r *registry) join() <-chan time.Time {
	if r.nc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinWithin)
	defer cancel()
	entries, bucketLost, err := r.watchAll(ctx)
	if err != nil && r.nc.IsClosed() {
		return nil // the joiner says why, and a new connection joins again
	}
	if err != nil {
		r.kv = nil
		why := fmt.Sprintf("Server: NATS at %s cannot keep the room's names: %v", connectedTo(r.nc), why(err))
		if errors.Is(err, errCopies) {
			why = fmt.Sprintf("Server: %v yet; trying again\nServer:   every second (NATS says: %s)",
				errCopies, strings.TrimPrefix(err.Error(), errCopies.Error()+": "))
		}
		if why != r.said {
			r.log("%s", why)
			r.said = why
		}
		return time.After(retryEvery) // joiner.go
	}
	r.said = ""
	r.news.push(news{kind: newsJoined, connection: r.connection, entries: entries, bucketLost: bucketLost})
	return nil
}

// watchAll opens the bucket, writes our lease, claims our names again if the others may have
// seen them go, and starts watching: it returns the entries as they are now, and passes on
// every change after them (watch).
func (r *registry) watchAll(ctx context.Context) (entries []news, bucketLost bool, err error) {
	if bucketLost, err = r.openBucket(ctx); err != nil {
		return nil, false, err
	}
	start := time.Now()
	err = r.rewriteLease(ctx)
	lapsed := errors.Is(err, errLapsed)
	if lapsed {
		r.leaseKey, err = r.kv.Create(ctx, serverKeys+r.id, []byte(r.id), jetstream.KeyTTL(r.lease))
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		// It never ran out: a write of ours went through, but its answer was lost with the
		// connection. Nobody else writes our key.
		var entry jetstream.KeyValueEntry
		if entry, err = r.kv.Get(ctx, serverKeys+r.id); err == nil {
			r.leaseKey, lapsed = entry.Revision(), false
			err = r.rewriteLease(ctx)
		}
	}
	if err != nil {
		return nil, false, err
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
			r.news.push(news{kind: newsTaken, name: name})
		case err != nil:
			return nil, false, err
		default:
			r.owned[name] = revision
			r.news.push(news{kind: newsKept, name: name, since: revision})
		}
	}
	r.news.push(r.leaseGood(start))
	if r.watcher != nil {
		r.watcher.Stop()
	}
	watcher, err := r.kv.WatchAll(context.Background()) // it outlives ctx
	if err != nil {
		return nil, false, err
	}
	r.watcher, r.seen, r.checkpoint = watcher, &atomic.Uint64{}, 0
	// The watcher first gives every entry as it is now, then nil, then each change.
	for {
		select {
		case entry := <-watcher.Updates():
			if entry == nil && !slices.ContainsFunc(entries, func(n news) bool { return n.server == r.id }) {
				// A list without the key we have just written is cut short (the connection
				// is closing): it would show everyone gone.
				watcher.Stop()
				r.watcher = nil
				return nil, false, errors.New("the names' bucket listed the room without this server")
			}
			if entry == nil {
				if entries, err = r.withServers(ctx, entries); err != nil {
					watcher.Stop()
					r.watcher = nil
					return nil, false, err
				}
				go r.watch(watcher, r.seen, r.connection)
				return entries, bucketLost, nil
			}
			r.seen.Store(entry.Revision())
			if n, ok := r.entryNews(entry, r.connection); ok && (n.kind == newsArrived || n.kind == newsAlive) {
				entries = append(entries, n)
			}
		case <-ctx.Done():
			watcher.Stop()
			r.watcher = nil
			return nil, false, errors.New("the names' bucket did not list the room in time")
		}
	}
}

// withServers adds to entries the keys of the servers whose names they list without them: a
// key written again while the watcher listed the bucket comes after the list, as a change.
func (r *registry) withServers(ctx context.Context, entries []news) ([]news, error) {
	known := map[string]bool{}
	for _, n := range entries {
		known[n.server] = known[n.server] || n.kind == newsAlive
	}
	for server, up := range known {
		if up {
			continue
		}
		_, err := r.kv.Get(ctx, serverKeys+server)
		switch {
		case err == nil:
			entries = append(entries, news{kind: newsAlive, server: server, connection: r.connection})
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, err // a list we cannot complete would show its users gone
		}
	}
	return entries, nil
}

// errCopies says that a NATS cluster did not give the bucket three copies.
var errCopies = errors.New("NATS cannot keep three copies of the room's names")

// openBucket finds the bucket, or creates it. On a NATS cluster it has three copies, so that
// the room keeps its names when a node dies; a cluster that cannot give them now is asked
// again, never settled with fewer for good. A single NATS server keeps one. It reports whether
// NATS lost the bucket used before (deleted, or a NATS restarted without its memory).
func (r *registry) openBucket(ctx context.Context) (bucketLost bool, err error) {
	kv, err := r.js.KeyValue(ctx, namesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		replicas := 1
		if r.nc.ConnectedClusterName() != "" {
			replicas = 3
		}
		kv, err = r.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: namesBucket, Description: "who is who in the chat room of stage9-durable",
			// Keys may carry a TTL of their own (the servers' leases), and one that expires
			// leaves a marker, kept this long, which the watchers hear of.
			LimitMarkerTTL: r.lease,
			Storage:        jetstream.MemoryStorage, // names live as long as their users
			Replicas:       replicas,
		})
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
	created := status.(*jetstream.KeyValueBucketStatus).StreamInfo().Created
	bucketLost = !r.created.IsZero() && !created.Equal(r.created)
	r.kv, r.created = kv, created
	return bucketLost, nil
}

// leave forgets a connection that NATS let go, and tells the loop. Our names stay ours to
// write again on the next connection, if our lease has not run out meanwhile.
func (r *registry) leave(nc *nats.Conn, err error) {
	if nc != r.nc {
		return
	}
	if r.watcher != nil {
		r.watcher.Stop()
	}
	r.nc, r.kv, r.watcher = nil, nil, nil
	r.outbox.conn.Store(nil)
	r.news.push(news{kind: newsLost, err: err})
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

// operation gives one operation on the bucket answerWithin.
func (r *registry) operation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), answerWithin(r.lease))
}

// leaseGood is what the loop learns when our key was written: the server may speak for its
// names until lease − margin after start.
func (r *registry) leaseGood(start time.Time) news {
	return news{kind: newsTrusted, goodUntil: start.Add(r.lease - leaseMargin(r.lease))}
}

// errLapsed says that our key ran out, or is gone with the bucket: the other servers saw our
// users leave, and our names may be anyone's.
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

// refresh writes our key again: one write, however many names the server holds. A key that
// ran out, or a bucket that is gone, is an error: run then joins again, which claims our names
// again. A write that NATS did not answer in time is no error: the next one tries again.
func (r *registry) refresh() error {
	if r.kv == nil {
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
	answer := news{kind: newsClaimed, name: q.name, client: q.client, answer: noAnswer, err: errNotInRoom}
	if _, mine := r.owned[q.name]; mine {
		answer.answer = taken // by a user of this server who is still claiming it
	} else if r.kv != nil {
		ctx, cancel := r.operation()
		revision, err := r.takeName(ctx, q.name, 0)
		cancel()
		switch {
		case err == nil:
			r.owned[q.name] = revision
			answer.answer, answer.since = granted, revision
		case errors.Is(err, jetstream.ErrKeyExists):
			answer.answer = taken
		default:
			answer.err = err
		}
	}
	r.news.push(answer)
}

// takeName makes name ours: the entry we hold (since), written again so that the watchers see
// us arrive again; or a new entry if there is none; or the entry of a server whose lease ran
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

// release gives a name back. It deletes the entry only if it is still ours.
func (r *registry) release(name string) {
	since, ok := r.owned[name]
	delete(r.owned, name)
	if !ok || since == 0 || r.kv == nil {
		return // not in the bucket, or out of the room: its server's lease frees it
	}
	ctx, cancel := r.operation()
	defer cancel()
	r.kv.Delete(ctx, name, jetstream.LastRevision(since))
}

// stop gives every name back, and the lease, at shutdown.
func (r *registry) stop() {
	for name := range r.owned {
		r.release(name)
	}
	if r.kv != nil && r.leaseKey > 0 {
		ctx, cancel := r.operation()
		r.kv.Delete(ctx, serverKeys+r.id, jetstream.LastRevision(r.leaseKey))
		cancel()
	}
	close(r.stopped)
}

// replaceStalledWatcher makes sure the watcher keeps up: by now it must have shown what the
// bucket held at the last check. One that has not is stuck (its NATS node died, or the client
// library is recreating its consumer, which can take it 20 s), and the room's arrivals and
// departures would stop reaching this server meanwhile. So a new watcher takes over where the
// old one stopped, and shows every change since, in order.
func (r *registry) replaceStalledWatcher() {
	if r.kv == nil || r.watcher == nil {
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
		go r.watch(watcher, r.seen, r.connection)
	}
	r.checkpoint = last
}

// entryNews turns an entry of the bucket into news for the loop; our own names are not news.
func (r *registry) entryNews(entry jetstream.KeyValueEntry, connection int) (news, bool) {
	n := news{kind: newsArrived, name: entry.Key(), server: string(entry.Value()),
		since: entry.Revision(), connection: connection}
	put := entry.Operation() == jetstream.KeyValuePut
	if server, ok := strings.CutPrefix(entry.Key(), serverKeys); ok {
		n.name, n.server = "", server
		if n.kind = newsAlive; !put {
			n.kind = newsDead // its lease ran out, or it gave it back
		}
		return n, true
	}
	if !put {
		n.kind = newsGone // its server gave it back
		return n, true
	}
	return n, n.server != r.id
}

// watch passes on, from its own goroutine, every change in the bucket after the first list.
func (r *registry) watch(w jetstream.KeyWatcher, seen *atomic.Uint64, connection int) {
	for entry := range w.Updates() {
		if entry == nil {
			continue
		}
		seen.Store(entry.Revision())
		if n, ok := r.entryNews(entry, connection); ok {
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

// hold keeps the lines a client sent while its name is claimed or its lease checked. They are at most
// one read (the loop's 64 KiB buffer, within the client's budget): the client is not read
// again until the answer comes, so what it sends meanwhile waits in its socket.
func (s *server) hold(c *client, lines [][]byte) {
	for _, line := range lines {
		c.held = append(c.held, append([]byte(nil), line...))
	}
}

// claimed is the registry's answer, in the loop.
func (s *server) claimed(c *client, n news) {
	if c.disconnected || s.shuttingDown {
		if n.answer == granted {
			s.registry.ask(request{kind: release, name: n.name})
		}
		return
	}
	c.claiming = false
	switch n.answer {
	case taken:
		s.refuse(c, "* Sorry, the name "+n.name+" is taken.\n", fmt.Errorf(`name "%s" is taken`, n.name))
		return
	case noAnswer:
		s.refuse(c, "* Sorry, the room's names cannot be checked right now: try again.\n",
			fmt.Errorf("cannot claim the name %s: %v", n.name, why(n.err)))
		return
	}
	if stale := s.named(n.name); stale != nil {
		s.leave(stale, errSilent) // the registry says its entry is gone: we missed the news
	}
	c.since = n.since
	s.enter(c, n.name) // main.go
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}

// errNotInRoom is why a claim gets no answer while NATS is away.
var errNotInRoom = errors.New("NATS is away")

// confirmed is the registry's word that one of our names is ours again, after our lease ran
// out or NATS lost the bucket: since says which holder it is now.
func (s *server) confirmed(n news) {
	if c := s.named(n.name); c != nil && !c.remote {
		c.since = n.since
	}
}

// leaseGood is the registry's word that this server's key was written: it may speak for its
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
// and the wall clock, which a suspended laptop's monotonic clock does not follow. Out of the
// room nothing goes out to other servers: c speaks to this server's users only.
func (s *server) speaksFor(c *client) bool {
	now := time.Now()
	return !s.inRoom || c.since > 0 && now.Before(s.goodUntil) && now.Round(0).Before(s.goodUntil.Round(0))
}

// wait holds c's lines until the registry confirms the lease (or says the name is lost), and
// asks it to write the lease now rather than at the next refresh.
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
