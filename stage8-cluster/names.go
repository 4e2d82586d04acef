//go:build linux || darwin

package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// One name, one person, across the room. Two servers asked for "alice" at the same instant
// cannot both decide alone. JetStream, NATS's storage layer, has key-value buckets whose Create
// writes a key only if it does not exist: of two Creates of one key, exactly one succeeds. So
// the room's names are keys in a bucket, each holding the ID of its user's server.
//
// A name must come back when its server dies without a word (kill -9, a laptop lid). The bucket
// has a TTL, the lease (-lease): an entry that nobody rewrites for that long expires, and NATS
// puts a marker in its place. Each server rewrites its entries every third of a lease; a dead
// one rewrites nothing, and within a lease its users' names are free again.
//
// The bucket is also the list of who is where: every server watches it, and a new entry is an
// arrival, a deleted or expired one a departure.

const namesBucket = "chat-names"

// defaultLease is -lease's default: time for a busy laptop's rewrites, and not long to wait.
const defaultLease = 5 * time.Second

// answerWithin bounds one operation on the bucket: a rewrite without an answer and the next
// both fit in a lease (1/3 + 1/3 + 1/10 < 1), and a newcomer is told to try again, not left
// waiting on a NATS that is stopped.
func answerWithin(lease time.Duration) time.Duration { return lease / 10 }

// joinWithin bounds joining the room (the bucket, our names again): past it, the joiner retries.
const joinWithin = 5 * time.Second

// registry keeps this server's names in the bucket, on a goroutine of its own (run): the loop
// and the joiner hand it what to do (todo), and it hands the loop its answers (s.cluster.news).
type registry struct {
	s          *server       // for its news and outbox (s.cluster), s.options.lease and logLater: the rest is the loop's
	id         string        // this server's mark on its entries
	lease      time.Duration // the bucket's TTL: the room's lease, as its first server set it
	todo       todoList
	timer      *time.Ticker       // when to rewrite our names: every third of a lease
	kv         jetstream.KeyValue // nil while out of the room
	watcher    jetstream.KeyWatcher
	connection int               // counts the connections: news from an older one is stale
	owned      map[string]uint64 // our names, and the revision of the entry we last wrote
	stopped    chan struct{}     // closed once our names are given back, at shutdown
	said       string            // why the last join failed, as logged
}

// run sleeps until there is something to do, or until its names need rewriting.
func (r *registry) run() {
	for {
		select {
		case <-r.timer.C:
			r.rewrite()
		case <-r.todo.woken:
			for _, do := range r.todo.take() {
				do()
			}
		case <-r.stopped:
			return
		}
	}
}

// join runs on each new connection: it finds or creates the bucket (a restarted hub lost it),
// writes our names again, and watches. If it fails, it closes nc, and the joiner retries.
func (r *registry) join(nc *nats.Conn) {
	r.connection++
	r.s.cluster.outbox.conn.Store(nc)
	ctx, cancel := context.WithTimeout(context.Background(), joinWithin)
	defer cancel()
	if err := r.open(ctx, nc); err != nil {
		why := fmt.Sprintf("Server: NATS at %s cannot keep the names: %v", nc.ConnectedAddr(), err)
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			why = fmt.Sprintf("Server: NATS at %s has JetStream off (nats-server -js)", nc.ConnectedAddr())
		}
		if why != r.said {
			r.s.logLater(why) // once, not every second
			r.said = why
		}
		r.kv = nil
		nc.Close()
		return
	}
	connection, maxPayload, at := r.connection, int(nc.MaxPayload()), nc.ConnectedAddr()
	r.s.cluster.news.push(func() { r.s.onJoined(connection, maxPayload, at) })
	go r.watch(r.watcher, connection) // its first news: who is in the room now
}

// open opens the bucket, writes our names again, and starts watching.
func (r *registry) open(ctx context.Context, nc *nats.Conn) error {
	js, err := jetstream.New(nc)
	if err == nil {
		r.kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: namesBucket, TTL: r.s.options.lease,
			// Without markers an expired entry would vanish without a trace; with them,
			// the watchers hear of it.
			LimitMarkerTTL: r.s.options.lease, Storage: jetstream.MemoryStorage})
		if errors.Is(err, jetstream.ErrBucketExists) { // the room's first server made it
			r.kv, err = js.KeyValue(ctx, namesBucket)
		}
	}
	var status jetstream.KeyValueStatus
	if err == nil {
		status, err = r.kv.Status(ctx)
	}
	if err != nil {
		return err
	}
	r.lease = status.TTL()
	r.timer.Reset(r.lease / 3) // the room's lease may be another server's
	for name, revision := range r.owned {
		if err := r.keep(ctx, name, revision); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return err
		}
	}
	r.watcher, err = r.kv.WatchAll(context.Background()) // it outlives ctx
	return err
}

// watch hands the loop, from its own goroutine, every entry of the bucket as it is now, then
// every change.
func (r *registry) watch(w jetstream.KeyWatcher, connection int) {
	s := r.s
	for entry := range w.Updates() {
		if entry == nil {
			continue // the end of the entries as they were
		}
		name, server, op := entry.Key(), string(entry.Value()), entry.Operation()
		s.cluster.news.push(func() {
			c := s.named(name)
			switch {
			case !s.cluster.inRoom || connection != s.cluster.connection || server == r.id:
				// Stale, or our own write.
			case op == jetstream.KeyValuePut:
				s.arrived(name, server) // cluster.go
			case c == nil || !c.remote:
				// Nobody by that name here, or ours, whose lease ran out while this server
				// was paused: the next rewrite writes it again.
			case op == jetstream.KeyValuePurge: // a marker: its lease ran out
				s.leave(c, errSilent)
			default:
				s.leave(c, errElsewhere) // its server gave it back
			}
		})
	}
}

// leave forgets a connection that NATS let go, and tells the loop. Our names stay ours, to
// write again on the next connection if their leases have not run out meanwhile.
func (r *registry) leave(err error) {
	if r.watcher != nil {
		r.watcher.Stop()
	}
	r.kv, r.watcher = nil, nil
	r.s.cluster.outbox.conn.Store(nil)
	r.s.cluster.news.push(func() { r.s.onLost(err) })
}

// claim asks the bucket for name: create-if-absent, so exactly one claim of a name wins.
func (r *registry) claim(c *client, name string) {
	err := errors.New("NATS is away")
	if r.kv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
		var revision uint64
		if revision, err = r.kv.Create(ctx, name, []byte(r.id)); err == nil {
			r.owned[name] = revision
		}
		cancel()
	}
	r.s.cluster.news.push(func() { r.s.claimed(c, name, err) })
}

// release gives a name back. It deletes the entry only if it is still ours.
func (r *registry) release(name string) {
	revision, ok := r.owned[name]
	delete(r.owned, name)
	if ok && r.kv != nil { // else it runs out by itself
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
		defer cancel()
		r.kv.Delete(ctx, name, jetstream.LastRevision(revision))
	}
}

// rewrite writes our entries again before they run out. One write that gets no answer in time
// ends it: the next ones would wait as long for the same NATS, and a claim behind them too.
func (r *registry) rewrite() {
	for name, revision := range r.owned {
		if r.kv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), answerWithin(r.lease))
		err := r.keep(ctx, name, revision)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return // the next rewrite tries again
		}
	}
}

// keep writes our entry for name again: an Update of the entry we wrote last, or, if it ran
// out (NATS was away, or this server paused, longer than the lease), a Create. If someone else
// has it now (ErrKeyExists), it is no longer ours: the watcher shows the loop their entry.
func (r *registry) keep(ctx context.Context, name string, revision uint64) error {
	revision, err := r.kv.Update(ctx, name, []byte(r.id), revision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		revision, err = r.kv.Create(ctx, name, []byte(r.id))
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Ours after all (an earlier write went through, but its answer was lost)?
		if entry, getErr := r.kv.Get(ctx, name); getErr == nil && string(entry.Value()) == r.id {
			revision, err = entry.Revision(), nil
		}
	}
	if err == nil {
		r.owned[name] = revision
	} else if errors.Is(err, jetstream.ErrKeyExists) {
		delete(r.owned, name)
	}
	return err
}

// claim starts claiming name for c, which waits, reading nothing more, until the answer comes
// back (claimed).
func (s *server) claim(c *client, name string) {
	c.claiming = true
	s.updateReads(c) // flood.go: the lines that follow stay in the socket meanwhile
	s.cluster.registry.todo.push(func() { s.cluster.registry.claim(c, name) })
}

// claimed is the registry's answer, in the loop: err is nil if name is c's.
func (s *server) claimed(c *client, name string, err error) {
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
	c.claiming = false
	s.enter(c, name) // main.go
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}
