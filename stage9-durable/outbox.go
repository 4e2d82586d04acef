//go:build linux || darwin

package main

import (
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// The loop never waits for NATS. Publishing looks instant, but the NATS client writes into a
// buffer and then into its socket to NATS, and once both are full (NATS stopped, or slower
// than the room) a publish waits for room in that socket: a loop that published would stop
// serving every user of its own server, the one thing stage 5 teaches never to do. So the
// loop hands what the other servers must hear to a queue (push), and a goroutine of its own
// (run) does the publishing, and the waiting.
//
// The queue has a bound, as every client's output has one (-max-pending). Past it, the loop
// drops what it would add: the lines already queued go out in order, and the ones that do not
// fit are lost to the other servers only. Dropping the newest, not the oldest, keeps what the
// others hear a prefix of what was said, with one gap, never lines missing here and there. The
// server's own users still hear every line, from the loop, and are told (once) that the other
// servers do not, and again when they do.

// outboxLimit is the most bytes the queue to NATS holds. NATS takes a megabyte in a few
// milliseconds when it is there; a queue that held more would only delay the moment the users
// learn that it is not, and hold that much memory for nothing.
const outboxLimit = 1 << 20

// outbox is the queue between the loop and the goroutine that publishes.
type outbox struct {
	mu       sync.Mutex
	list     []*nats.Msg
	bytes    int                       // what waits, headers aside
	waiting  int                       // how many messages wait, taken or not
	wake     chan struct{}             // something waits in list
	conn     atomic.Pointer[nats.Conn] // where to publish; nil while NATS is away
	dropping bool                      // lines were dropped: the loop is told when list empties
}

func newOutbox() *outbox { return &outbox{wake: make(chan struct{}, 1)} }

// push queues m, from the loop, and reports false when it did not fit: it is dropped. It never
// waits: the publisher holds the lock only to take the whole list.
func (o *outbox) push(m *nats.Msg) bool {
	o.mu.Lock()
	fits := o.bytes+len(m.Data) <= outboxLimit
	if fits {
		o.list = append(o.list, m)
		o.bytes += len(m.Data)
		o.waiting++
	} else {
		o.dropping = true
	}
	o.mu.Unlock()
	if fits {
		select {
		case o.wake <- struct{}{}:
		default: // woken already
		}
	}
	return fits
}

// run publishes what the loop queued, in order, for ever. caughtUp is called when the queue
// has emptied after dropping lines.
func (o *outbox) run(caughtUp func()) {
	for range o.wake {
		o.mu.Lock()
		list := o.list
		o.list = nil
		o.mu.Unlock()
		for _, m := range list {
			// While NATS is away nothing is kept for later: a split room does not replay.
			if nc := o.conn.Load(); nc != nil {
				nc.PublishMsg(m) // it may wait here, for room in the socket to NATS
			}
			o.mu.Lock()
			o.bytes -= len(m.Data)
			o.waiting--
			told := o.waiting == 0 && o.dropping
			if told {
				o.dropping = false
			}
			o.mu.Unlock()
			if told {
				caughtUp()
			}
		}
	}
}

// empty reports whether everything queued has been handed to NATS; the shutdown waits for it.
func (o *outbox) empty() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.waiting == 0
}
