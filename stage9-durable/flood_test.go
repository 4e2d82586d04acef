//go:build linux || darwin

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// floodLine is line i of a flood: 100 bytes with its "\n", numbered so that a reader can tell
// a lost, repeated, cut or reordered line.
func floodLine(i int) string {
	return fmt.Sprintf("flood line %06d %s\n", i, strings.Repeat("y", 100-len("flood line 000000 \n")))
}

// TestFloodAcrossServers floods the room from server A, which runs with flood control as
// shipped, for two seconds. Two readers, one on A and one on B, read nothing while the flood
// lasts: without a budget, A would read the flood as fast as the flooder writes, and both
// readers would fall past -max-pending and be dropped (B's through NATS). With it, A reads
// the flooder at -max-rate, says so once, and both readers then get every line, whole and in
// order. B runs with a tiny budget of its own, which is for its own clients' sockets: the news
// from NATS is not read through any client's budget, so B's reader keeps up with A's. Both
// pollers: each stops watching a throttled client its own way, beside the NATS wake-up.
func TestFloodAcrossServers(t *testing.T) {
	t.Parallel()
	for _, poller := range []string{"select", nativePollerName} {
		t.Run(poller, func(t *testing.T) {
			t.Parallel()
			floodAcrossServers(t, "-poller", poller)
		})
	}
}

func floodAcrossServers(t *testing.T, pollerFlag ...string) {
	const (
		floodFor       = 2 * time.Second
		rate, burst    = 65536, 256 << 10 // A's, as shipped (flags.go)
		bRate, bBurst  = 1024, 1024       // B's: its own users may say little, quickly
		linesPerWrite  = 16
		slowedDownLine = "Server: flood slowed down: sending faster than 65536 bytes/s"
	)
	ns := startNATS(t, -1)
	a := startServer(t, append(pollerFlag, "-nats", ns.ClientURL())...)
	b := startServer(t, append(pollerFlag, "-nats", ns.ClientURL(), "-max-rate", fmt.Sprint(bRate), "-max-burst", fmt.Sprint(bBurst))...)

	aReader := join(t, a, "ann", "* The room is empty")
	knows([]*process{b}, "ann")
	bReader := join(t, b, "ben", "* The room contains: ann")
	aReader.expect("* ben has entered the room")
	knows([]*process{a}, "ben")
	flooder := join(t, a, "flood", "* The room contains: ann, ben")
	aReader.expect("* flood has entered the room")
	bReader.expect("* flood has entered the room")
	knows([]*process{b}, "flood")

	// The flooder writes until floodFor is over, as `yes | nc` would, and reads what it is
	// sent (the server may tell it to slow down). A write the deadline cuts short is finished
	// without one, so that every line it sent is whole. A small send buffer keeps what waits
	// in the kernel when the flood stops, and so the time to read it at -max-rate, short.
	flooder.conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
	go io.Copy(io.Discard, flooder.conn)
	start := time.Now()
	stop := start.Add(floodFor)
	sent := 0
	for time.Now().Before(stop) {
		var chunk strings.Builder
		for i := range linesPerWrite {
			chunk.WriteString(floodLine(sent + i))
		}
		flooder.conn.SetWriteDeadline(stop)
		n, err := flooder.conn.Write([]byte(chunk.String()))
		var netErr net.Error
		if err != nil && errors.As(err, &netErr) && netErr.Timeout() {
			flooder.conn.SetWriteDeadline(time.Time{})
			_, err = flooder.conn.Write([]byte(chunk.String()[n:]))
		}
		if err != nil {
			t.Fatalf("the flooder could not send: %v", err)
		}
		sent += linesPerWrite
	}
	t.Logf("the flooder sent %d lines (%d KiB) in %v", sent, sent*100>>10, floodFor)

	// Both readers now read, side by side: B's must not lag far behind A's.
	done := make(chan time.Time, 2)
	failed := make(chan string, 2)
	for _, reader := range []*user{aReader, bReader} {
		go func() {
			for i := range sent {
				want := "[flood] " + strings.TrimSuffix(floodLine(i), "\n")
				got, err := reader.line(patience)
				if err != nil || got != want {
					failed <- fmt.Sprintf("%s: line %d: got %q (%v), want %q", reader.name, i, got, err, want)
					return
				}
			}
			done <- time.Now()
		}()
	}
	var finished []time.Time
	for range 2 {
		select {
		case at := <-done:
			finished = append(finished, at)
		case why := <-failed:
			t.Fatalf("a reader did not get the flood whole and in order: %s\nA printed, at the end:\n%s\nB printed, at the end:\n%s",
				why, tail(a), tail(b))
		}
	}
	if gap := finished[1].Sub(finished[0]); gap > patience {
		t.Errorf("one reader got the flood %v after the other: is the news held to B's budget?", gap)
	}

	// The flood was read at A's rate: at most the burst at once, then -max-rate.
	took := finished[1].Sub(start)
	if least := time.Duration(float64(sent*100-burst) / rate * 0.9 * float64(time.Second)); took < least {
		t.Errorf("%d bytes went through in %v, want at least %v at %d bytes/s after a burst of %d",
			sent*100, took, least, rate, burst)
	}
	aReader.silent()
	bReader.silent()
	count := func(s *process, line string) (n int) {
		for _, l := range s.lines() {
			if l == line {
				n++
			}
		}
		return n
	}
	if n := count(a, slowedDownLine); n != 1 {
		t.Errorf("A said %q %d times, want once per flood; it printed, at the end:\n%s", slowedDownLine, n, tail(a))
	}
	for _, l := range b.lines() {
		if strings.Contains(l, "slowed down") {
			t.Errorf("B slowed down someone, though only news came in: %q", l)
		}
	}
}

// tail is the end of what a server printed: a flood's log is long.
func tail(s *process) string {
	lines := s.lines()
	return strings.Join(lines[max(len(lines)-20, 0):], "\n")
}

// TestFloodFlags checks -max-rate and -max-burst as the other flags are checked (a value that
// makes no sense is one line and exit status 2, before anything starts), and that -h lists
// them and still fits in 80 columns.
func TestFloodFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-max-rate", "-1"}, {"-max-burst", "0"}, {"-max-burst", "-5"}} {
		// A server that takes the value starts, and is killed after patience.
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		out, err := exec.CommandContext(ctx, stageBinary, append([]string{"-addr", "127.0.0.1:0", "-nats-listen", "127.0.0.1:0"}, args...)...).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
		if !strings.HasPrefix(string(out), "stage9-durable: "+args[0]+" must be ") || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%v printed %q, want one line that says what %s must be", args, out, args[0])
		}
	}
	usage, err := exec.Command(stageBinary, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{
		"-max-rate int\n    \tbytes a client may send per second, 0 for no limit (default 65536)\n",
		"-max-burst int\n    \tbytes a client may send at once, before -max-rate (default 262144)\n",
	} {
		if !strings.Contains(string(usage), want) {
			t.Errorf("-h does not say %q:\n%s", want, usage)
		}
	}
	for _, line := range strings.Split(string(usage), "\n") {
		columns := 0
		for _, r := range line {
			if r == '\t' {
				columns += 8 - columns%8
			} else {
				columns++
			}
		}
		if columns > 80 {
			t.Errorf("-h line %q is %d columns wide, want 80 at most", line, columns)
		}
	}
}

// TestClaimUnderFlood has a client send its name and more in one write, to a server whose
// budget lets it read a few bytes at a time, so that the client runs out of budget while its
// name is being claimed, and its budget comes back before the answer. It must not be read
// meanwhile (its lines wait in its socket), nor dropped when the answer comes: flood control
// must not put back in the poller a client that the claim took out of it. Both pollers.
func TestClaimUnderFlood(t *testing.T) {
	t.Parallel()
	for _, poller := range []string{"select", nativePollerName} {
		t.Run(poller, func(t *testing.T) {
			t.Parallel()
			ns := startNATS(t, -1)
			s := startServer(t, "-poller", poller, "-nats", ns.ClientURL(), "-max-rate", "80000", "-max-burst", "8")
			ann := arrive(t, s, "ann")
			ann.send("ann")
			ann.expectSkipping(floodNotice, "* The room is empty")
			for round := range 20 {
				name := fmt.Sprintf("zed%d", round)
				zed := arrive(t, s, name)
				zed.send(name, "hello from "+name, "/who")
				zed.expectSkipping(floodNotice, "* The room contains: ann", "* Present: ann, "+name)
				ann.expectSkipping(floodNotice, "* "+name+" has entered the room", "["+name+"] hello from "+name)
				zed.leave()
				ann.expectSkipping(floodNotice, "* "+name+" has left the room")
			}
		})
	}
}

// floodNotice is what a client over its budget is told, whatever the rate.
var floodNotice = regexp.MustCompile(`^Server: you send faster than \d+ bytes/s, slowing you down$`)

// expectSkipping is expect, but for the lines that match skip.
func (u *user) expectSkipping(skip *regexp.Regexp, want ...string) {
	u.t.Helper()
	for _, w := range want {
		for {
			got, err := u.line(patience)
			if err != nil {
				u.t.Fatalf("%s waited for %q: %v", u.name, w, err)
			}
			if skip.MatchString(got) {
				continue
			}
			if got != w {
				u.t.Fatalf("%s got %q, want %q", u.name, got, w)
			}
			break
		}
	}
}
