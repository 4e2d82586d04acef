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
// bucket has a TTL, the lease (-lease): an entry that nobody rewrites for that long expires,
// and NATS itself puts a marker in its place. Each server rewrites its own entries every third
// of a lease, with an Update that succeeds only if the entry is still the one it wrote. A dead
// server rewrites nothing: within a lease its users' names are free again.
//
// The bucket is also the room's list of who is where. Every server watches it: a new entry is
// someone's arrival, a deleted or expired one a departure, in the bucket's order.
//
// Every operation on the bucket is a round trip to NATS, which the loop must not wait for. So
// the registry runs in a goroutine of its own: the loop asks (ask), the registry answers
// through the loop's news (cluster.go).

const namesBucket = "chat-names"

// defaultLease is -lease's default: a name outlives its server's silence by 5 s, long enough
// for a busy laptop's refreshes, short enough that a name is free again soon after.
const defaultLease = 5 * time.Second

// answerWithin is how long one operation on the bucket may take: a tenth of the lease. A
// refresh that gets no answer in time is followed by the next a third of a lease later, and
// both fit in the lease (1/3 + 1/3 + 1/10 < 1); a newcomer whose claim gets no answer is told
// to try again after that long, not left waiting on a NATS that is stopped.
func answerWithin(lease time.Duration) time.Duration { return lease / 10 }

// joinWithin is how long joining the room may take (the bucket, our names again, the list of
// who is there): past it, the connection is closed and the joiner tries again.
const joinWithin = 5 * time.Second

// requestKind says what the loop, or the joiner, asks of the registry.
type requestKind int

const (
	claim     requestKind = iota // name, for client
	release                      // name: its user left
	connected                    // NATS took us (nc): join the room
	lost                         // NATS let nc go (err)
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
	asked  time.Duration // -lease: the bucket's TTL, if this server creates it
	lease  time.Duration // the bucket's TTL: the room's lease, whoever set it
	news   *inbox
	outbox *outbox

	mu       sync.Mutex
	requests []request
	wake     chan struct{}

	// The rest belongs to run's goroutine.
	nc         *nats.Conn
	kv         jetstream.KeyValue // nil while out of the room
	watcher    jetstream.KeyWatcher
	connection int               // counts the connections: news from an older one is stale
	owned      map[string]uint64 // our names, and the revision of the entry we last wrote
	said       string            // why joining failed, as last logged
	stopped    chan struct{}     // closed when stop is done
}

func newRegistry(news *inbox, lease time.Duration, out *outbox) *registry {
	return &registry{id: nats.NewInbox()[len(nats.InboxPrefix):], asked: lease, lease: lease,
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

// run is the registry's goroutine. It sleeps until asked, or until its names need rewriting.
func (r *registry) run() {
	refresh := time.NewTicker(r.lease / 3)
	defer refresh.Stop()
	for {
		select {
		case <-refresh.C:
			r.refresh()
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
				r.join(q.nc)
				refresh.Reset(r.lease / 3) // the room's lease may not be ours
			case lost:
				r.leave(q.nc, q.err)
			case stop:
				for name := range r.owned {
					r.release(name)
				}
				close(r.stopped)
				return
			}
		}
	}
}

// join runs on each new connection: it finds the bucket or creates it (a restarted hub has
// lost it), writes our names again, and watches the bucket, sending the loop the room as it
// is now. If any of it fails, the connection is closed, and the joiner makes a new one.
func (r *registry) join(nc *nats.Conn) {
	r.nc = nc
	r.connection++
	r.outbox.conn.Store(nc)
	ctx, cancel := context.WithTimeout(context.Background(), joinWithin)
	defer cancel()
	entries, err := r.watchAll(ctx)
	if err != nil {
		if why := fmt.Sprintf("Server: NATS at %s cannot keep the room's names: %v", connectedTo(nc), why(err)); why != r.said {
			r.log("%s", why)
			r.said = why
		}
		r.kv = nil
		nc.Close()
		return
	}
	r.said = ""
	r.news.push(news{kind: newsJoined, connection: r.connection, entries: entries,
		maxPayload: int(nc.MaxPayload()), url: connectedTo(nc)})
}

// watchAll opens the bucket, writes our names again, and starts watching: it returns the
// others' entries as they are now, and passes on every change after them (watch).
func (r *registry) watchAll(ctx context.Context) ([]news, error) {
	if err := r.openBucket(ctx); err != nil {
		return nil, err
	}
	for name, revision := range r.owned {
		if err := r.keep(ctx, name, revision); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, err
		}
	}
	watcher, err := r.kv.WatchAll(context.Background()) // it outlives ctx
	if err != nil {
		return nil, err
	}
	r.watcher = watcher
	// The watcher first gives every entry as it is now, then nil, then each change.
	var entries []news
	for {
		select {
		case entry := <-watcher.Updates():
			if entry == nil {
				go r.watch(watcher, r.connection)
				return entries, nil
			}
			if n, ok := r.entryNews(entry, r.connection); ok && n.kind == newsArrived {
				entries = append(entries, n)
			}
		case <-ctx.Done():
			watcher.Stop()
			return nil, errors.New("the names' bucket did not list the room in time")
		}
	}
}

// openBucket finds the bucket, or creates it. A bucket that exists keeps its settings: its TTL
// is the room's lease, as the room's first server set it.
func (r *registry) openBucket(ctx context.Context) error {
	js, err := jetstream.New(r.nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, namesBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: namesBucket, Description: "who is who in the chat room of stage8-cluster",
			TTL: r.asked,
			// Without markers an expired entry would vanish without a trace; with them,
			// the watchers hear of it.
			LimitMarkerTTL: r.asked,
			Storage:        jetstream.MemoryStorage, // names live as long as their users
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another server was quicker
			kv, err = js.KeyValue(ctx, namesBucket)
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
	r.kv, r.lease = kv, status.TTL()
	return nil
}

// leave forgets a connection that NATS let go, and tells the loop. Our names stay ours to
// write again on the next connection, if their leases have not run out meanwhile.
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

func (r *registry) log(format string, args ...any) {
	r.news.push(news{kind: newsLog, data: fmt.Appendf(nil, format, args...)})
}

// operation gives one operation on the bucket answerWithin.
func (r *registry) operation() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), answerWithin(r.lease))
}

// claim asks the bucket for q.name: create-if-absent, so exactly one claim of a name wins.
func (r *registry) claim(q request) {
	answer := news{kind: newsClaimed, name: q.name, client: q.client, answer: noAnswer, err: errNotInRoom}
	if _, mine := r.owned[q.name]; mine {
		answer.answer = taken // by a user of this server who is still claiming it
	} else if r.kv != nil {
		ctx, cancel := r.operation()
		revision, err := r.kv.Create(ctx, q.name, []byte(r.id))
		cancel()
		switch {
		case err == nil:
			r.owned[q.name] = revision
			answer.answer = granted
		case errors.Is(err, jetstream.ErrKeyExists):
			answer.answer = taken
		default:
			answer.err = err
		}
	}
	r.news.push(answer)
}

// release gives a name back. It deletes the entry only if it is still ours.
func (r *registry) release(name string) {
	revision, ok := r.owned[name]
	delete(r.owned, name)
	if !ok || r.kv == nil {
		return // not in the bucket, or out of the room: it runs out by itself
	}
	ctx, cancel := r.operation()
	defer cancel()
	r.kv.Delete(ctx, name, jetstream.LastRevision(revision))
}

// refresh rewrites our entries before they run out. One write that gets no answer in time
// ends it: the next ones would wait as long for the same NATS, and a claim behind them too.
// The next refresh tries again.
func (r *registry) refresh() {
	if r.kv == nil {
		return
	}
	for name, revision := range r.owned {
		ctx, cancel := r.operation()
		err := r.keep(ctx, name, revision)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return
		}
	}
}

// keep writes our entry for name again: an Update of the entry we wrote last, or, if it ran
// out (NATS was away, or this server paused, longer than the lease), a Create. If someone else
// has the name now, our user loses it: the loop is told, and the error is ErrKeyExists.
func (r *registry) keep(ctx context.Context, name string, revision uint64) error {
	revision, err := r.kv.Update(ctx, name, []byte(r.id), revision)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		revision, err = r.kv.Create(ctx, name, []byte(r.id))
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Ours after all (an earlier write went through, but its answer was lost)?
			if entry, getErr := r.kv.Get(ctx, name); getErr == nil && string(entry.Value()) == r.id {
				revision, err = entry.Revision(), nil
			}
		}
	}
	switch {
	case err == nil:
		r.owned[name] = revision
	case errors.Is(err, jetstream.ErrKeyExists):
		delete(r.owned, name)
		r.news.push(news{kind: newsTaken, name: name})
	}
	return err
}

// entryNews turns an entry of the bucket into news for the loop; our own puts are not news.
func (r *registry) entryNews(entry jetstream.KeyValueEntry, connection int) (news, bool) {
	n := news{kind: newsArrived, name: entry.Key(), server: string(entry.Value()), connection: connection}
	switch entry.Operation() {
	case jetstream.KeyValuePut:
		return n, n.server != r.id
	case jetstream.KeyValuePurge:
		n.kind, n.expired = newsGone, true // its server stopped rewriting it
	default:
		n.kind = newsGone // its server gave it back
	}
	return n, true
}

// watch passes on, from its own goroutine, every change in the bucket after the first list.
func (r *registry) watch(w jetstream.KeyWatcher, connection int) {
	for entry := range w.Updates() {
		if n, ok := r.entryNews(entry, connection); entry != nil && ok {
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

// hold keeps the lines a claiming client sent in the same read as its name. They are at most
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
	s.enter(c, n.name) // main.go
	s.updateReads(c)
	held := c.held
	c.held = nil
	s.route(c, held)
}

// errNotInRoom is why a claim gets no answer while NATS is away.
var errNotInRoom = errors.New("NATS is away")
