//go:build linux || darwin

package main

import "golang.org/x/sys/unix"

// outputQueue is what a client's socket has not taken yet, so that a slow reader neither
// makes the others wait nor loses a line. Each batch is the framed lines of one read, never
// changed once queued, and every receiver's queue holds that batch, not a copy: a line sent
// to 1,000 clients is held once, and freed once the last of them has sent it.
type outputQueue struct {
	batches  [][]byte // the first one may have lost its front to a partial write
	queued   int      // the bytes in batches
	cut      bool     // the socket took part of a batch: a line written now would land inside it
	watching bool     // the poller reports room in the socket for us: see writeTo
}

// add queues batch and reports whether the queue was empty: then the client needs a write this
// pass (with output already waiting, it has one coming, or the poller will say when). Past
// limit bytes it reports why the client must be dropped instead (limits.go).
func (q *outputQueue) add(batch []byte, limit int) (first bool, err error) {
	q.batches = append(q.batches, batch)
	q.queued += len(batch)
	if q.queued > limit {
		return false, errNotReading(limit)
	}
	return q.queued == len(batch), nil
}

// writeTo hands the socket fd the whole queue in one writev, as Redis does, and keeps what it
// did not take. The poller is to report room in the socket only while output waits: a socket
// with room is always writable, and watching an idle client would wake the loop at once,
// forever. rewatch says that this changed (q.watching says how); an error, that fd has gone.
func (q *outputQueue) writeTo(fd int) (rewatch bool, err error) {
	if q.queued > 0 {
		// writev takes one slice per batch, at most 1024 of them (IOV_MAX on Linux and macOS).
		n, err := unix.Writev(fd, q.batches[:min(len(q.batches), 1024)])
		if err != nil && err != unix.EAGAIN {
			return false, err // EPIPE, ECONNRESET
		}
		n = max(n, 0) // EAGAIN (n is -1) or a partial write: the rest waits
		q.queued -= n
		done := 0
		for ; done < len(q.batches) && n >= len(q.batches[done]); done++ {
			n -= len(q.batches[done])
		}
		if n > 0 {
			q.batches[done] = q.batches[done][n:] // this queue's view of it: the bytes are shared
		}
		q.cut = n > 0 || q.cut && done == 0
		// Forget the batches sent, so that one nobody needs any more can be freed; and once
		// caught up after a backlog, give the long queue back.
		left := copy(q.batches, q.batches[done:])
		clear(q.batches[left:])
		if q.batches = q.batches[:left]; left == 0 && cap(q.batches) > 64 {
			q.batches = nil
		}
	}
	rewatch = q.watching != (q.queued > 0)
	q.watching = q.queued > 0
	return rewatch, nil
}
