//go:build linux || darwin

package main

import (
	"cmp"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// A server never gives up on the room. NATS may not be there yet, may refuse the secret (a typo,
// a hub restarted with another one), may vanish for minutes: the server keeps its own users
// talking, says in one line why it waits, and joins again by itself once NATS takes it. The
// NATS client would reconnect by itself, but not for every reason (after the same refusal twice
// it gives up), so the joiner does it, one way for every case: each connection is made once
// (NoReconnect), and when it closes, the joiner makes a new one and the server joins afresh.

// retryEvery is the wait between tries: the room is whole a second after NATS is back, and a
// server that waits for minutes costs next to nothing.
const retryEvery = time.Second

// writeWithin is how long NATS may leave our socket full before the connection is given up: a
// NATS that takes nothing for that long is stopped (its laptop's lid closed), and meanwhile the
// NATS client holds its lock, so that the names (names.go) cannot even ask it anything.
const writeWithin = 2 * time.Second

// joiner keeps a connection to NATS, on a goroutine of its own (run), and tells the server what
// happens through three functions that must not wait.
type joiner struct {
	urls      string // comma-separated, secret included
	options   []nats.Option
	say       func(line string)   // why it waits, for the log
	connected func(nc *nats.Conn) // NATS took us
	lost      func(err error)     // and let us go
	stop      chan struct{}       // closed at shutdown
}

func (j *joiner) run() {
	accepted, said := false, "" // NATS took our secret once; why we wait, as said last
	for {
		closed := make(chan error, 1)
		lostWith := errors.New("closed by NATS") // unless the client says why
		nc, err := nats.Connect(j.urls, append(j.options, nats.NoReconnect(),
			// A NATS gone without a word is found out within 30 s, or writeWithin if we talk.
			nats.PingInterval(10*time.Second), nats.FlusherTimeout(writeWithin),
			// Both run on one goroutine of the client's, in this order.
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { lostWith = cmp.Or(err, lostWith) }),
			nats.ClosedHandler(func(*nats.Conn) { closed <- lostWith }))...)
		if err == nil {
			accepted, said = true, ""
			j.connected(nc)
			select {
			case err := <-closed:
				j.lost(err)
			case <-j.stop:
				return // the server closes nc itself, after its last words
			}
		} else if why := j.why(err, accepted); why != said {
			j.say(why)
			said = why
		}
		select {
		case <-time.After(retryEvery):
		case <-j.stop:
			return
		}
	}
}

// why says, in one line for the log, why the joiner waits.
func (j *joiner) why(err error, accepted bool) string {
	why := err.Error()
	switch {
	case errors.Is(err, nats.ErrAuthorization) && accepted:
		why = "was restarted with another secret"
	case errors.Is(err, nats.ErrAuthorization):
		why = "refuses the secret in its URL"
	case errors.Is(err, nats.ErrNoServers):
		why = "does not answer"
	}
	return "Server: NATS " + why + "; trying again every second"
}
