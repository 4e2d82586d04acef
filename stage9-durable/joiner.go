//go:build linux || darwin

package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// A server that joins the room never gives up on it. NATS may not be there yet (the hub's
// laptop is still booting), may refuse the secret (a typo, or a hub restarted with another
// one), may vanish for minutes and come back on the same port. In every case the server keeps
// its own users talking, says in one line why it waits, and joins the room again by itself
// once NATS takes it.
//
// The NATS client can reconnect by itself, but not for every reason: after the same refusal
// twice it closes the connection for good unless told otherwise. So the joiner does the
// reconnecting, one way for every case: each connection is made once (nats.NoReconnect), and
// when it closes, for whatever reason, the joiner makes a new one, and the server joins the
// room afresh on it, as it did at start.

// writeWithin is how long NATS may leave our socket full before the connection is given up.
// A NATS that takes nothing for that long is stopped (its laptop's lid closed) or far too
// slow for a room; and while the socket is full, the NATS client holds its lock, so that the
// names (names.go) could not even ask it anything. Better split, say so, and try again.
const writeWithin = 2 * time.Second

// retryEvery is how long the joiner waits between two tries: short enough that a room is
// whole again a second after its NATS is back, long enough that a server waiting for minutes
// costs NATS and the machine nothing worth counting.
const retryEvery = time.Second

// joiner keeps a connection to NATS. It runs on a goroutine of its own (run), and tells the
// server what happens through three functions, which must not wait.
type joiner struct {
	urls      string // -nats or NATS_URL, or the hub's own: comma-separated, secret included
	shown     string // the same, without the secret, for the log
	options   []nats.Option
	say       func(line string)              // a line for the log
	connected func(nc *nats.Conn)            // NATS took us
	lost      func(nc *nats.Conn, err error) // and let us go
	stop      chan struct{}                  // closed at shutdown: give up now
}

// run connects, and connects again each time the connection closes, until stop.
func (j *joiner) run() {
	accepted := false // NATS took our secret once: a refusal now means it changed
	said := ""        // why we wait, as last said: said once, not every second
	for {
		closed := make(chan error, 1)
		var lostWith error
		nc, err := nats.Connect(j.urls, append(j.options,
			nats.NoReconnect(),
			// A NATS that vanished without closing (a laptop lid) is found out within 30 s:
			// a ping every 10 s, and two unanswered; sooner if we had something to send.
			nats.PingInterval(10*time.Second),
			nats.FlusherTimeout(writeWithin),
			// Both run on one goroutine of the client's, the first before the second.
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { lostWith = err }),
			nats.ClosedHandler(func(*nats.Conn) { closed <- lostWith }),
		)...)
		if err == nil {
			accepted, said = true, ""
			j.connected(nc)
			select {
			case err = <-closed:
				j.lost(nc, err)
				continue // at once: a hub restarted on its port is back already
			case <-j.stop:
				return // the server closes nc itself, after its last words
			}
		}
		if why := j.why(err, accepted); why != said {
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
	const again = "trying again every second"
	switch {
	case errors.Is(err, nats.ErrAuthorization) && accepted:
		return fmt.Sprintf("Server: NATS at %s was restarted with another secret; %s", j.shown, again)
	case errors.Is(err, nats.ErrAuthorization):
		return fmt.Sprintf("Server: NATS at %s refuses the secret in its URL; %s", j.shown, again)
	case errors.Is(err, nats.ErrNoServers):
		return fmt.Sprintf("Server: NATS at %s does not answer; %s", j.shown, again)
	}
	return fmt.Sprintf("Server: NATS at %s: %v; %s", j.shown, err, again)
}
