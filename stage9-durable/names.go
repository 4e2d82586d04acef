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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// One name, one person, across the room. Two servers asked for "alice" at the same instant
// cannot both decide alone. JetStream, NATS's storage layer, has key-value buckets whose Create
// writes a key only if it does not exist: of two Creates of one key, exactly one succeeds. So
// the room's names are keys in a bucket, each holding the ID of its user's server.
//
// A name must come back when its server dies without a word (kill -9, a laptop lid). So each
// server has one key of its own, servers.ID, its lease: written with a TTL (-lease), and again
// every third of a lease while the server lives. A dead one writes nothing: within a lease its
// key expires, NATS puts a marker in its place, and every server sees its users leave. A name
// points at its server, and is written once: one whose server's key is gone is free, and the
// next server asked for it takes it over. So 1,000 users cost NATS what one costs: one write
// per server per third of a lease (TestRefreshCost).
//
// The bucket is also the list of who is where: every server watches it, and a new entry is an
// arrival, a deleted one or a server's expired key a departure.
//
// The lease is also a fence. A server that stops (SIGSTOP, a frozen VM) has a key that runs
// out while it cannot tell, and someone else may take its names. So it speaks for them only
// while it knows its lease is good: until lease − margin after the START of the last write of
// its key that succeeded (the bucket counts from a moment after). Writes come every lease/3,
// none waits more than answerWithin, and a write without an answer is followed by the next
// before lease − margin runs out (1/3 + 1/3 + 1/10 < 4/5). TestLeaseKept and TestPausedServer
// break when this rule does.

const (
	namesBucket = "chat-names"
	serverKeys  = "servers." // the servers' leases; a name is letters and digits only
)

// defaultLease is -lease's default: time for a busy laptop's rewrites, and not long to wait.
const defaultLease = 5 * time.Second

// leaseMargin is how long before its end a server stops trusting its lease: time for a line
// already sent to arrive before the name can change hands.
func leaseMargin(lease time.Duration) time.Duration { return lease / 5 }

// answerWithin bounds one operation on the bucket: a rewrite without an answer and the next
// both fit in a lease (1/3 + 1/3 + 1/10 < 1), and a newcomer is told to try again, not left
// waiting on a NATS that is stopped.
func answerWithin(lease time.Duration) time.Duration { return lease / 10 }

// joinWithin bounds joining the room (the bucket, our names again): past it, the join is tried
// again a second later, and the claims that wait behind it (a NATS cluster electing a new
// leader for the bucket) are answered in between (TestNATSCluster).
const joinWithin = 2 * time.Second

// watchCheckEvery is how often the registry checks that its watcher keeps up: one short
// request to NATS, a read. A stall is noticed at the second check after it began.
const watchCheckEvery = time.Second

// registry keeps this server's names in the bucket, on a goroutine of its own (run): the loop
// and the joiner hand it what to do (todo), and it hands the loop its answers (s.cluster.news).
type registry struct {
	s          *server       // for its news and outbox (s.cluster), s.options.lease and logLater: the rest is the loop's
	id         string        // this server's mark on its entries
	lease      time.Duration // -lease: the TTL of this server's key
	todo       todoList
	timer      *time.Ticker // when to write our lease again: every third of a lease
	nc         *nats.Conn   // nil while NATS is away
	js         jetstream.JetStream
	kv         jetstream.KeyValue // nil while out of the room
	created    time.Time          // when NATS made the bucket: another time means it lost the first
	watcher    jetstream.KeyWatcher
	seen       *atomic.Uint64    // the last revision the watcher showed, from its goroutine
	checkpoint uint64            // the bucket's last revision at the last check
	retry      <-chan time.Time  // when to try joining again, after it failed
	connection int               // counts the connections: news from an older one is stale
	leaseKey   uint64            // the revision of our key as we last wrote it; 0: none
	owned      map[string]uint64 // our names, and the revision of the entry we last wrote
	stopped    chan struct{}     // closed once our names are given back, at shutdown
	said       string            // why the last join failed, as logged
}

// entry is one of the bucket's entries, as the loop sees it: a name and its holder, or (name
// "") a server's lease.
type entry struct {
	name, server string
	since        uint64
}

// run sleeps until there is something to do, until its lease needs writing, until a failed
// join is due again, or until the watcher's check.
func (r *registry) run() {
	watchCheck := time.NewTicker(watchCheckEvery)
	for {
		select {
		case <-r.timer.C:
			r.check()
		case <-r.retry:
			r.retry = r.list()
		case <-watchCheck.C:
			r.replaceStalledWatcher()
		case <-r.todo.woken:
			for _, do := range r.todo.take() {
				do()
			}
		case <-r.stopped:
			return
		}
	}
}

// stop, at shutdown, gives every name back, and the lease.
func (r *registry) stop() {
	for name := range r.owned {
		r.release(name)
	}
	if r.kv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
		r.kv.Delete(ctx, serverKeys+r.id, jetstream.LastRevision(r.leaseKey))
		cancel()
	}
	close(r.stopped)
}

// join runs on each new connection. The loop hears at once that lines flow; then the registry
// writes our lease and names into the bucket and lists the room (list).
func (r *registry) join(nc *nats.Conn) {
	nc.FlushTimeout(answerWithin(r.lease)) // our subscriptions reach NATS before we say we are back
	r.nc, r.kv = nc, nil
	r.js, _ = jetstream.New(nc) // fails only without a connection
	r.connection++
	r.s.cluster.outbox.conn.Store(nc)
	connection, maxPayload, at := r.connection, int(nc.MaxPayload()), nc.ConnectedAddr()
	r.s.cluster.news.push(func() { r.s.onJoined(connection, maxPayload, at) })
	r.retry = r.list()
}

// list writes our lease and our names into the bucket (made again if NATS lost it), and hands
// the loop the bucket as it is now. It runs on each new connection, when our lease ran out,
// and when the bucket is gone. If it fails, it says why (once) and returns when to try again.
func (r *registry) list() <-chan time.Time {
	if r.nc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), joinWithin)
	defer cancel()
	entries, bucketLost, err := r.open(ctx)
	if err != nil {
		r.kv = nil
		if r.nc.IsClosed() {
			return nil // the joiner says why, and the next connection joins again
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("NATS did not answer in time")
		}
		why := fmt.Sprintf("Server: NATS at %s cannot keep the names: %v", r.nc.ConnectedAddr(), err)
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			why = fmt.Sprintf("Server: NATS at %s has JetStream off (nats-server -js)", r.nc.ConnectedAddr())
		}
		if errors.Is(err, errCopies) {
			why = fmt.Sprintf("Server: %v yet; trying again\nServer:   every second (NATS says: %s)",
				errCopies, strings.TrimPrefix(err.Error(), errCopies.Error()+": "))
		}
		if why != r.said {
			r.s.logLater(why)
			r.said = why
		}
		return time.After(retryEvery) // joiner.go
	}
	r.said = ""
	connection := r.connection
	r.s.cluster.news.push(func() { r.s.listed(connection, entries, bucketLost) })
	return nil
}

// open opens the bucket, writes our lease, claims our names again if the others may have seen
// them go, and starts watching: it returns the entries as they are now, and passes on every
// change after them (watch).
func (r *registry) open(ctx context.Context) (entries []entry, bucketLost bool, err error) {
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
		var e jetstream.KeyValueEntry
		if e, err = r.kv.Get(ctx, serverKeys+r.id); err == nil {
			r.leaseKey, lapsed = e.Revision(), false
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
		if since := r.owned[name]; lapsed || since == 0 {
			r.keep(ctx, name, since)
		} // else its entry still points at our key, which never ran out: still ours
	}
	r.s.cluster.news.push(r.trusted(start))
	if r.watcher != nil {
		r.watcher.Stop()
	}
	r.watcher, err = r.kv.WatchAll(context.Background()) // it outlives ctx
	if err != nil {
		return nil, false, err
	}
	r.seen, r.checkpoint = &atomic.Uint64{}, 0
	// The watcher first gives every entry as it is now, then nil, then each change.
	for {
		select {
		case e := <-r.watcher.Updates():
			if e == nil {
				entries, err = r.complete(ctx, entries)
				if err == nil {
					go r.watch(r.watcher, r.seen, r.connection)
				}
				return entries, bucketLost, err
			}
			r.seen.Store(e.Revision())
			if server, ok := strings.CutPrefix(e.Key(), serverKeys); ok && e.Operation() == jetstream.KeyValuePut {
				entries = append(entries, entry{"", server, 0})
			} else if !ok && e.Operation() == jetstream.KeyValuePut && string(e.Value()) != r.id {
				entries = append(entries, entry{e.Key(), string(e.Value()), e.Revision()})
			}
		case <-ctx.Done():
			return nil, false, errors.New("the names' bucket did not list the room in time")
		}
	}
}

// complete checks the list: it must hold our own key, just written, or it was cut short (the
// connection is closing), and would show everyone gone. And a server's key written again
// while the watcher listed the bucket comes after the list, as a change: it is asked for.
func (r *registry) complete(ctx context.Context, entries []entry) ([]entry, error) {
	known := map[string]bool{}
	for _, e := range entries {
		known[e.server] = known[e.server] || e.name == ""
	}
	if !known[r.id] {
		return nil, errors.New("the names' bucket listed the room without this server")
	}
	for server, up := range known {
		if up {
			continue
		}
		_, err := r.kv.Get(ctx, serverKeys+server)
		switch {
		case err == nil:
			entries = append(entries, entry{"", server, 0})
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return nil, err
		}
	}
	return entries, nil
}

// errCopies says that a NATS cluster did not give the bucket three copies.
var errCopies = errors.New("NATS cannot keep three copies of the room's names")

// openBucket finds the bucket, or creates it. On a NATS cluster it has three copies, so that
// the room keeps its names when a node dies; a cluster that cannot give them now is asked
// again, never settled with fewer for good. It reports whether NATS lost the bucket used
// before (deleted, or a NATS restarted without its memory).
func (r *registry) openBucket(ctx context.Context) (bucketLost bool, err error) {
	replicas := 1
	if r.nc.ConnectedClusterName() != "" {
		replicas = 3
	}
	kv, err := r.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: namesBucket,
		// Keys may carry a TTL of their own (the servers' leases); one that expires leaves a
		// marker, kept this long, which the watchers hear of.
		LimitMarkerTTL: r.lease, Storage: jetstream.MemoryStorage, Replicas: replicas})
	if errors.Is(err, jetstream.ErrBucketExists) { // another server made it
		kv, err = r.js.KeyValue(ctx, namesBucket)
	} else if err != nil && replicas == 3 {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) {
			err = fmt.Errorf("%w: %s", errCopies, apiErr.Description)
		}
	}
	var status jetstream.KeyValueStatus
	if err == nil {
		status, err = kv.Status(ctx)
	}
	if err != nil {
		return false, err
	}
	created := status.(*jetstream.KeyValueBucketStatus).StreamInfo().Created
	bucketLost = !r.created.IsZero() && !created.Equal(r.created)
	r.kv, r.created = kv, created
	return bucketLost, nil
}

// watch hands the loop, from its own goroutine, every change in the bucket after the list.
func (r *registry) watch(w jetstream.KeyWatcher, seen *atomic.Uint64, connection int) {
	s := r.s
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		seen.Store(e.Revision())
		name, value, revision, put := e.Key(), string(e.Value()), e.Revision(), e.Operation() == jetstream.KeyValuePut
		server, isLease := strings.CutPrefix(name, serverKeys)
		s.cluster.news.push(func() {
			switch {
			case !s.cluster.inRoom || connection != s.cluster.connection:
				// Stale.
			case isLease && put:
				s.cluster.alive[server] = true
			case isLease:
				s.serverGone(server) // cluster.go
			case put && value != r.id:
				s.arrived(name, value, revision)
			case !put:
				s.gone(name, revision)
			}
		})
	}
}

// replaceStalledWatcher makes sure the watcher keeps up: by now it must have shown what the
// bucket held at the last check. One that has not is stuck (its NATS node died, or the client
// library is recreating its consumer, which can take it 20 s), and the room's arrivals and
// departures would stop reaching this server. So a new one takes over where it stopped.
func (r *registry) replaceStalledWatcher() {
	if r.kv == nil || r.watcher == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
	defer cancel()
	status, err := r.kv.Status(ctx)
	if err != nil {
		return // NATS is slow: the next check tries again
	}
	if seen := r.seen.Load(); seen < r.checkpoint {
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
	r.checkpoint = status.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
}

// leave forgets a connection that NATS let go, and tells the loop. Our names stay ours, to
// write again on the next connection if our lease has not run out meanwhile.
func (r *registry) leave(err error) {
	if r.watcher != nil {
		r.watcher.Stop()
	}
	r.nc, r.kv, r.watcher, r.retry = nil, nil, nil, nil
	r.s.cluster.outbox.conn.Store(nil)
	r.s.cluster.news.push(func() { r.s.onLost(err) })
}

// claim asks the bucket for name, and answers the loop.
func (r *registry) claim(c *client, name string) {
	err := errors.New("NATS is away")
	var revision uint64
	if _, mine := r.owned[name]; mine {
		err = jetstream.ErrKeyExists // a user of ours is still claiming it
	} else if r.kv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
		if revision, err = r.take(ctx, name, 0); err == nil {
			r.owned[name] = revision
		}
		cancel()
	}
	r.s.cluster.news.push(func() { r.s.claimed(c, name, revision, err) })
}

// release gives a name back. It deletes the entry only if it is still ours.
func (r *registry) release(name string) {
	revision, ok := r.owned[name]
	delete(r.owned, name)
	if ok && revision > 0 && r.kv != nil { // else our lease's end frees it
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
		defer cancel()
		r.kv.Delete(ctx, name, jetstream.LastRevision(revision))
	}
}

// trusted is what the loop learns when our key was written: the server may speak for its
// names until lease − margin after start.
func (r *registry) trusted(start time.Time) func() {
	until := start.Add(r.lease - leaseMargin(r.lease))
	return func() { r.s.leaseGood(until) }
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

// check writes our key again: one write, however many names the server holds. A key that ran
// out, or a bucket that is gone, makes the registry join again, which claims our names again;
// a write without an answer in time waits for the next.
func (r *registry) check() {
	if r.kv == nil || r.retry != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
	defer cancel()
	start := time.Now()
	switch err := r.rewriteLease(ctx); {
	case err == nil:
		r.s.cluster.news.push(r.trusted(start))
	case !errors.Is(err, context.DeadlineExceeded):
		r.retry = r.list()
	}
}

// keep makes name ours again after our lease ran out, or claims one taken while NATS was
// away; if someone else has it now, our user loses it.
func (r *registry) keep(ctx context.Context, name string, since uint64) {
	revision, err := r.take(ctx, name, since)
	switch {
	case err == nil:
		r.owned[name] = revision
		r.s.cluster.news.push(func() { r.s.confirmed(name, revision) })
	case errors.Is(err, jetstream.ErrKeyExists):
		delete(r.owned, name)
		r.s.cluster.news.push(func() {
			if c := r.s.named(name); c != nil && !c.remote {
				r.s.lost(c)
			}
		})
	}
}

// take makes name ours: the entry we hold (since), written again so that the watchers see us
// arrive again; or a new entry; or the entry of a server whose lease ran out, taken over. Each
// step succeeds only if the entry is still what we saw: of two servers that try at once,
// exactly one wins. It returns ErrKeyExists if a living server holds the name.
func (r *registry) take(ctx context.Context, name string, since uint64) (uint64, error) {
	if since > 0 {
		if revision, err := r.kv.Update(ctx, name, []byte(r.id), since); err == nil {
			return revision, nil
		}
	}
	revision, err := r.kv.Create(ctx, name, []byte(r.id))
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return revision, err
	}
	e, err := r.kv.Get(ctx, name)
	if err != nil {
		return 0, err
	}
	server := string(e.Value())
	if _, err := r.kv.Get(ctx, serverKeys+server); server == r.id || !errors.Is(err, jetstream.ErrKeyNotFound) {
		if err == nil || server == r.id {
			err = jetstream.ErrKeyExists
		}
		return 0, err
	}
	return r.kv.Update(ctx, name, []byte(r.id), e.Revision()) // its server is gone
}

// claim starts claiming name for c, which waits, reading nothing more, until the answer comes
// back (claimed).
func (s *server) claim(c *client, name string) {
	c.claiming = true
	s.updateReads(c) // flood.go: the lines that follow stay in the socket meanwhile
	s.cluster.registry.todo.push(func() { s.cluster.registry.claim(c, name) })
}

// claimed is the registry's answer, in the loop: err is nil if name is c's, since revision.
func (s *server) claimed(c *client, name string, revision uint64, err error) {
	switch {
	case c.disconnected || s.shutdown.begun:
		if err == nil {
			s.cluster.registry.todo.push(func() { s.cluster.registry.release(name) })
		}
		return
	case errors.Is(err, jetstream.ErrKeyExists):
		s.refuse(c, "* Sorry, the name "+name+" is taken.\n", fmt.Errorf(`name "%s" is taken`, name))
		return
	case err != nil:
		s.refuse(c, "* Sorry, the room's names cannot be checked right now: try again.\n",
			fmt.Errorf("cannot claim the name %s: %v", name, err))
		return
	}
	c.claiming, c.since = false, revision
	s.enter(c, name) // main.go
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}

// confirmed is the registry's word that one of our names is ours again, since revision.
func (s *server) confirmed(name string, revision uint64) {
	if c := s.named(name); c != nil && !c.remote {
		c.since = revision
	}
}

// leaseGood is the registry's word that our key was written: the server may speak for its
// names until until, and the lines its users held meanwhile go out now.
func (s *server) leaseGood(until time.Time) {
	s.cluster.goodUntil = until
	if s.cluster.dropping && s.cluster.outbox.bytes.Load() == 0 {
		s.caughtUp() // cluster.go: it dropped what waited for the lease, not the outbox
	}
	for _, c := range s.joined {
		if !c.remote {
			s.resume(c)
		}
	}
}

// speaksFor reports whether the server may speak for c's name now: while its lease is known to
// be good. Both clocks must agree: the monotonic one, which a paused process does not stop,
// and the wall clock, which a suspended laptop's monotonic clock does not follow. Out of the
// room, nothing goes to other servers: c speaks to this server's users only.
func (s *server) speaksFor(c *client) bool {
	now := time.Now()
	return !s.cluster.inRoom || c.since > 0 && now.Before(s.cluster.goodUntil) && now.Round(0).Before(s.cluster.goodUntil.Round(0))
}

// checkLease asks the registry to write the lease now rather than at the next rewrite:
// something waits for it.
func (s *server) checkLease() { s.cluster.registry.todo.push(s.cluster.registry.check) }

// resume sends what c said for the room, and the /msg it was sent, while the lease was checked,
// if it may speak now.
func (s *server) resume(c *client) {
	if !s.speaksFor(c) {
		return
	}
	for _, line := range c.unheard {
		s.send(c, string(line))
	}
	forRoom := c.forRoom
	c.forRoom, c.unheard = nil, nil
	for _, tell := range forRoom {
		tell()
	}
}
