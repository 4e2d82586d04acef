//go:build linux || darwin

package main

import (
	"bytes"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// connect returns a non-blocking socket whose peer reads only when the test says so, with a
// small send buffer, so that a write of a megabyte takes only part of it.
func connect(t *testing.T) (fd, peer int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	for _, err := range []error{
		unix.SetNonblock(fds[0], true),
		unix.SetNonblock(fds[1], true),
		unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return fds[0], fds[1]
}

// readAvailable reads what is waiting at peer.
func readAvailable(t *testing.T, peer int) []byte {
	t.Helper()
	var got []byte
	buffer := make([]byte, 64<<10)
	for {
		n, err := unix.Read(peer, buffer)
		if err == unix.EAGAIN {
			return got
		}
		if err != nil || n == 0 {
			t.Fatalf("read: %d, %v", n, err)
		}
		got = append(got, buffer[:n]...)
	}
}

// deliver writes q to fd and reads it at peer until q is empty, and returns what peer read.
func deliver(t *testing.T, q *outputQueue, fd, peer int) []byte {
	t.Helper()
	var got []byte
	for i := 0; q.queued > 0; i++ {
		if i == 10000 {
			t.Fatalf("%d bytes still queued after %d writes", q.queued, i)
		}
		if _, err := q.writeTo(fd); err != nil {
			t.Fatal(err)
		}
		got = append(got, readAvailable(t, peer)...)
	}
	return got
}

func batchOf(b byte, size int) []byte { return bytes.Repeat([]byte{b}, size) }

func TestOutputQueuePartialWrites(t *testing.T) {
	fd, peer := connect(t)
	var q outputQueue
	a, b := batchOf('a', 1<<20), batchOf('b', 1000)
	if first, err := q.add(a, 4<<20); !first || err != nil {
		t.Fatalf("the first batch: first %v, err %v; want true, nil", first, err)
	}
	if first, err := q.add(b, 4<<20); first || err != nil {
		t.Fatalf("the second batch: first %v, err %v; want false, nil", first, err)
	}

	// The socket takes part of the first batch: the rest waits, and the poller must watch.
	rewatch, err := q.writeTo(fd)
	if err != nil || !rewatch || !q.watching {
		t.Fatalf("a partial write: rewatch %v, watching %v, err %v; want true, true, nil",
			rewatch, q.watching, err)
	}
	took := len(a) + len(b) - q.queued
	if took <= 0 || took >= len(a) || !q.cut {
		t.Fatalf("the socket took %d bytes, cut %v; the test wants part of the first batch", took, q.cut)
	}
	// Full: nothing is taken, and nothing changes for the poller.
	rewatch, err = q.writeTo(fd)
	if err != nil || rewatch || q.queued != len(a)+len(b)-took {
		t.Fatalf("a full socket: rewatch %v, queued %d, err %v; want false, %d, nil",
			rewatch, q.queued, err, len(a)+len(b)-took)
	}
	got := readAvailable(t, peer)
	if len(got) != took {
		t.Fatalf("the peer read %d bytes, the queue counts %d written", len(got), took)
	}

	// Once all is written, in order and whole, the poller stops watching.
	got = append(got, deliver(t, &q, fd, peer)...)
	if !bytes.Equal(got, append(append([]byte{}, a...), b...)) {
		t.Fatalf("the peer read %d bytes, not the %d of both batches in order", len(got), len(a)+len(b))
	}
	if q.watching || q.cut || len(q.batches) != 0 {
		t.Fatalf("caught up: watching %v, cut %v, %d batches; want false, false, 0",
			q.watching, q.cut, len(q.batches))
	}
	if !bytes.Equal(a, batchOf('a', len(a))) || !bytes.Equal(b, batchOf('b', len(b))) {
		t.Fatal("writing changed a batch")
	}
	if first, _ := q.add(b, 4<<20); !first {
		t.Fatal("a batch after catching up is not the first")
	}
}

func TestOutputQueueSharesBatches(t *testing.T) {
	fd1, peer1 := connect(t)
	fd2, peer2 := connect(t)
	var q1, q2 outputQueue
	batch := batchOf('s', 1<<20)
	q1.add(batch, 4<<20)
	q2.add(batch, 4<<20)
	if &q1.batches[0][0] != &batch[0] || &q2.batches[0][0] != &batch[0] {
		t.Fatal("a queue holds a copy of the batch, not the batch")
	}
	// One receiver takes part of it: the other's queue still holds it whole.
	q1.writeTo(fd1)
	if q2.queued != len(batch) || len(q2.batches[0]) != len(batch) {
		t.Fatalf("the other queue holds %d bytes of %d", len(q2.batches[0]), len(batch))
	}
	got := deliver(t, &q1, fd1, peer1)
	if len(got) == 0 || !bytes.Equal(got, batch[len(batch)-len(got):]) {
		t.Fatal("the first receiver did not get the rest of the batch")
	}
	if got := deliver(t, &q2, fd2, peer2); !bytes.Equal(got, batch) {
		t.Fatalf("the second receiver got %d bytes, not the batch", len(got))
	}
}

func TestOutputQueueLimit(t *testing.T) {
	var q outputQueue
	if _, err := q.add(batchOf('l', 6), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := q.add(batchOf('l', 4), 10); err != nil {
		t.Fatalf("10 bytes queued under a limit of 10: %v", err)
	}
	_, err := q.add(batchOf('l', 1), 10)
	var d drop
	if !errors.As(err, &d) || err.Error() != "not reading: more than 10 bytes pending" {
		t.Fatalf("11 bytes queued under a limit of 10: %v; want the not-reading drop", err)
	}
}

func TestOutputQueueGone(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	unix.Close(fds[1])
	var q outputQueue
	q.add(batchOf('g', 10), 100)
	if _, err := q.writeTo(fds[0]); err == nil {
		t.Fatal("a write to a closed peer did not fail")
	}
}
