//go:build linux || darwin

package main

import (
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// The loop never waits for NATS. A publish looks instant, but once the NATS client's buffer
// and socket are full (NATS stopped, or slower than the room) it waits for room in the socket:
// a loop that published would stop serving its own users, which stage 5 teaches never to do.
// So the loop queues (push), and a goroutine of its own (run) publishes, and waits.
//
// The queue is bounded, as every client's output is; past it the loop drops the newest, so that
// what the others hear stays what was said, with one gap. The users here still hear every
// line, and are told that the others do not, and when they do again.

// outboxLimit is the most bytes the queue holds: a client's -max-pending. A NATS that is there
// takes that much in milliseconds; more would only delay the moment the users learn it is not.
const outboxLimit = 4 << 20

// outbox is the queue between the loop and the goroutine that publishes (run).
type outbox struct {
	todoList                           // of publishes
	bytes    atomic.Int64              // what waits: the loop adds, run takes off
	dropping atomic.Bool               // one did not fit: say so once the queue is empty
	caughtUp func()                    // says so
	conn     atomic.Pointer[nats.Conn] // where to publish; nil while out of the room
}

// push queues m, from the loop, and reports false if it does not fit. It never waits.
func (o *outbox) push(m *nats.Msg) bool {
	size := int64(len(m.Data)) // never 0: every message holds a line
	if o.bytes.Load()+size > outboxLimit {
		o.dropping.Store(true)
		return false
	}
	o.bytes.Add(size)
	o.todoList.push(func() {
		// Out of the room nothing is kept for later: a split room does not replay.
		if nc := o.conn.Load(); nc != nil {
			nc.PublishMsg(m) // it may wait here, for room in the socket to NATS
		}
		if o.bytes.Add(-size) == 0 && o.dropping.CompareAndSwap(true, false) {
			o.caughtUp()
		}
	})
	return true
}

func (o *outbox) run() {
	for range o.woken {
		for _, publish := range o.take() {
			publish()
		}
	}
}
