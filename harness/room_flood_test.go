//go:build linux || darwin

package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// Flood control in stages 6 and 7: one client sending as fast as its socket takes it
// (`yes | nc`) is read no faster than its budget, so that it cannot empty the room. Every test
// runs against both stages, with select and with this system's own poller, on the stage's
// defaults unless it says otherwise; stage 7's flood.go differs in its words (a name, lines
// ended by "\n").

// The defaults, as the stages ship them.
const (
	floodRate  = 65536  // -max-rate: bytes a second
	floodBurst = 262144 // -max-burst: bytes at once
)

// floodRoom is a running stage 6 or 7 of the real-room set (room_test.go), with the log
// read by WaitLine: a flood test looks for its lines among the server's others.
type floodRoom struct {
	*Server
	roomStage
	rate int // the server's -max-rate
}

// forEachFloodRoom runs test as forEachRoom does on stages 6 and 7, each with a server started
// with args.
func forEachFloodRoom(t *testing.T, test func(t *testing.T, room *floodRoom), args ...string) {
	rate := floodRate
	for i, arg := range args[:max(len(args)-1, 0)] {
		if arg == "-max-rate" {
			rate, _ = strconv.Atoi(args[i+1])
		}
	}
	forEachRoom(t, hostileRooms, func(t *testing.T, r *room) {
		test(t, &floodRoom{Server: r.start(t, args...), roomStage: r.roomStage, rate: rate})
	})
}

// join connects a client called name (a name only stage 7 hears) and waits until the server
// has taken it in. small gives it a receive buffer of 4 KiB. In stage 7 every client that
// joined before hears of it, in a line that starts with "* ", which those in told read.
func (r *floodRoom) join(t *testing.T, name string, small bool, told ...*tester.Client) *tester.Client {
	t.Helper()
	var c *tester.Client
	if small {
		c = dialSmallReceiveBuffer(t, r.Addr)
	} else {
		c = Dial(t, r.Addr)
	}
	r.WaitLine(t, "Server: client connected")
	if r.named {
		require.Equal(t, stage7Welcome, c.NextLine())
		c.Send(name + "\n")
		r.WaitLine(t, "Server: "+name+" joined")
		require.True(t, strings.HasPrefix(c.NextLine(), "* The room "))
		for _, other := range told {
			require.Equal(t, "* "+name+" has entered the room\n", other.NextLine())
		}
	}
	return c
}

// relayed is line from name as the others receive it.
func (r *floodRoom) relayed(name, line string) string {
	if r.named {
		return "[" + name + "] " + line + r.eol
	}
	return line + r.eol
}

// slowedDown is the log's line about a client that goes over its budget.
func (r *floodRoom) slowedDown(name string) string {
	if !r.named {
		name = "client"
	}
	return fmt.Sprintf("Server: %s slowed down: sending faster than %d bytes/s", name, r.rate)
}

// count counts the log lines so far that are line.
func (r *floodRoom) count(line string) int {
	n := 0
	for _, l := range r.Lines() {
		if l == line {
			n++
		}
	}
	return n
}

// floodWith writes chunk over and over from c until stop is closed, and yields the bytes its
// writes handed to the kernel, and the first error other than the stop. A flooder also reads
// what it is sent and throws it away, as `yes | nc` does.
func floodWith(c *tester.Client, chunk []byte, stop <-chan struct{}) <-chan floodResult {
	done := make(chan floodResult, 1)
	go io.Copy(io.Discard, c.Conn)
	go func() {
		var res floodResult
		for {
			select {
			case <-stop:
				done <- res
				return
			default:
			}
			c.Conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := c.Conn.Write(chunk)
			res.sent += n
			var netErr net.Error
			if err != nil && !(errors.As(err, &netErr) && netErr.Timeout()) {
				res.err = err
				done <- res
				return
			}
		}
	}()
	return done
}

type floodResult struct {
	sent int
	err  error
}

// A room as issue 15 met it: 20 readers taking about 1 MB/s each (16 KiB every 16 ms, with a
// receive buffer of 4 KiB: laptops on a busy Wi-Fi), a pair of clients playing ping-pong, and
// one client sending "y\n" as fast as its socket takes it. Without a budget the readers fall
// past -max-pending within a second and are dropped. With one, nobody is dropped, every line
// arrives whole, a ping's round trip stays under 100 ms at the 99th percentile, and the log
// says once that the flooder was slowed down.
func TestFloodControlRoom(t *testing.T) {
	// One room at a time, and no other test beside it: it measures round trips.
	forEachRoomInTurn(t, hostileRooms, func(t *testing.T, r *room) {
		room := &floodRoom{Server: r.start(t, "-quiet"), roomStage: r.roomStage, rate: floodRate}
		const readerCount, floodFor = 20, 1500 * time.Millisecond
		readers := make([]*tester.Client, readerCount)
		for i := range readers {
			readers[i] = room.join(t, fmt.Sprintf("reader%d", i), true)
		}
		ping, pong := room.join(t, "ping", false), room.join(t, "pong", false)
		flooder := room.join(t, "flooder", false)

		// Each client knows the lines it may be sent: the flood, the pings, the pongs, the
		// last line, and in stage 7 the news of those who joined after it.
		flood, last := room.relayed("flooder", "y"), room.relayed("ping", "last")
		pingPattern := strings.TrimRight(room.relayed("ping", "ping "), "\r\n") // and a number
		pongPattern := strings.TrimRight(room.relayed("pong", "pong "), "\r\n")
		expected := func(line string) bool {
			return line == flood || line == last || strings.HasPrefix(line, pingPattern) ||
				strings.HasPrefix(line, pongPattern) || room.named && strings.HasPrefix(line, "* ")
		}

		// The readers: 16 KiB every 16 ms, each line checked whole, until the last line.
		readerErrs := make(chan error, readerCount)
		for i, c := range readers {
			go func() {
				readerErrs <- slowRead(c, flood, expected, last, fmt.Sprintf("reader%d", i))
			}()
		}

		// pong answers every ping; ping measures the round trips, by the ping's number.
		var pongErr, pingErr error
		trips := map[int]time.Duration{}
		var tripsMu sync.Mutex
		var pingers sync.WaitGroup
		pingers.Add(2)
		go func() {
			defer pingers.Done()
			pongErr = readFloodRoomLines(pong, last, flood, expected, func(line string) error {
				if n, ok := strings.CutPrefix(line, pingPattern); ok {
					_, err := io.WriteString(pong.Conn, "pong "+strings.TrimRight(n, "\r\n")+"\n")
					return err
				}
				return nil
			})
		}()
		var sentAt sync.Map
		go func() {
			defer pingers.Done()
			pingErr = readFloodRoomLines(ping, "", flood, expected, func(line string) error {
				if n, ok := strings.CutPrefix(line, pongPattern); ok {
					i, _ := strconv.Atoi(strings.TrimRight(n, "\r\n"))
					if at, ok := sentAt.Load(i); ok {
						tripsMu.Lock()
						trips[i] = time.Since(at.(time.Time))
						tripsMu.Unlock()
					}
				}
				return nil
			})
		}()

		// The burst goes first: 256 KiB of "y\n" are 131,072 lines at once, which every client
		// has to read through, a paste's worth for each. What the budget sets is the flood after
		// it, at -max-rate: the round trips are measured from half a second after the log says
		// that the flooder is slowed down, for 2.5 seconds; and, as the CPU tests do, a second
		// time before failing, in case other work on this shared machine took the cores.
		// A ping with no answer 200 ms after its window counts as slower than any.
		percentile99 := func(from, to int) (time.Duration, int) {
			tripsMu.Lock()
			defer tripsMu.Unlock()
			var window []time.Duration
			for i := from; i < to; i++ {
				trip, ok := trips[i]
				if !ok {
					trip = time.Hour
				}
				window = append(window, trip)
			}
			slices.Sort(window)
			return window[len(window)*99/100], len(window)
		}
		type measurement struct {
			from, to int
			p99      time.Duration
		}
		var windows []measurement
		stop := make(chan struct{})
		flooded := floodWith(flooder, bytes.Repeat([]byte("y\n"), 32<<10), stop)
		start := time.Now()
		slowed := make(chan struct{})
		go func() { // no test failure from here: the test goroutine sees the channel stay open
			for deadline := time.Now().Add(Deadline); ; {
				line, ok := room.output.Next(time.Until(deadline), nil)
				if !ok {
					return
				}
				if line == room.slowedDown("flooder") {
					close(slowed)
					return
				}
			}
		}()
		var measureFrom, windowStart time.Time
		var pingSendErr error
	pinging:
		for i := 0; pingSendErr == nil; i++ {
			select {
			case <-slowed:
				measureFrom, slowed = time.Now().Add(500*time.Millisecond), nil
			default:
			}
			if measureFrom.IsZero() && time.Since(start) > Deadline {
				break // never slowed down: said below
			}
			if !measureFrom.IsZero() {
				k := len(windows) - 1
				switch {
				case k < 0 && !time.Now().Before(measureFrom):
					windows, windowStart = append(windows, measurement{from: i, to: -1}), time.Now()
				case k >= 0 && windows[k].to < 0 && time.Since(windowStart) >= floodFor:
					windows[k].to = i
				case k >= 0 && windows[k].to >= 0 && time.Since(windowStart) >= floodFor+200*time.Millisecond:
					windows[k].p99, _ = percentile99(windows[k].from, windows[k].to)
					if windows[k].p99 < 100*time.Millisecond || len(windows) == 2 {
						break pinging
					}
					windows, windowStart = append(windows, measurement{from: i, to: -1}), time.Now()
				}
			}
			sentAt.Store(i, time.Now())
			ping.Conn.SetWriteDeadline(time.Now().Add(Deadline))
			_, pingSendErr = fmt.Fprintf(ping.Conn, "ping %d\n", i)
			time.Sleep(20 * time.Millisecond)
		}
		close(stop)
		res := <-flooded
		for _, line := range room.Lines() {
			require.NotContains(t, line, "disconnected", "nobody may be dropped")
			require.NotContains(t, line, " left", "nobody may be dropped")
		}
		require.False(t, measureFrom.IsZero(), "the flooder was never slowed down")
		require.NoError(t, pingSendErr)
		require.NoError(t, res.err)
		ping.Send("last\n")
		for range readerCount {
			require.NoError(t, <-readerErrs)
		}
		ping.Conn.SetReadDeadline(time.Now().Add(time.Second)) // ping does not hear its own last line
		pingers.Wait()
		require.NoError(t, pongErr)
		require.True(t, pingErr == nil || errors.Is(pingErr, errDeadline), "ping: %v", pingErr)
		require.Equal(t, 1, room.count(room.slowedDown("flooder")), "the flood is logged once: %q", room.Lines())

		final := windows[len(windows)-1]
		var burst, measured []time.Duration
		for i, trip := range trips {
			switch {
			case i < windows[0].from:
				burst = append(burst, trip)
			case i >= final.from && i < final.to:
				measured = append(measured, trip)
			}
		}
		require.Greater(t, final.to-final.from, int(floodFor/(100*time.Millisecond)), "pings sent")
		slices.Sort(measured)
		var p99s []string
		for _, w := range windows {
			p99s = append(p99s, w.p99.Round(100*time.Microsecond).String())
		}
		t.Logf("slowed down after %v; the flooder handed its kernel %d bytes; ping round trips at -max-rate: p99 %s; last window: p50 %v, max %v (%d of %d pings answered); during the burst: max %v (%d pings)",
			measureFrom.Add(-500*time.Millisecond).Sub(start).Round(time.Millisecond), res.sent, strings.Join(p99s, ", then "),
			measured[len(measured)/2].Round(100*time.Microsecond), measured[len(measured)-1].Round(100*time.Microsecond),
			len(measured), final.to-final.from, slices.Max(append(burst, 0)).Round(time.Millisecond), len(burst))
		require.Less(t, final.p99, 100*time.Millisecond, "ping round trip at the 99th percentile, measured twice")
	})
}

var errDeadline = errors.New("deadline")

// readFloodRoomLines reads c's lines until it gets until (or, if until is "", until its read
// deadline passes, which it reports as errDeadline), failing on a line that expected refuses,
// and hands every line but flood to each. The flood's lines are compared without a copy: they
// are most of what arrives.
func readFloodRoomLines(c *tester.Client, until, flood string, expected func(string) bool, each func(string) error) error {
	if until != "" {
		c.Conn.SetReadDeadline(time.Now().Add(Deadline + 5*time.Second))
	}
	for {
		raw, err := c.Reader.ReadSlice('\n')
		if err == nil && string(raw) == flood {
			continue
		}
		line := string(raw)
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() && until == "" {
			return errDeadline
		}
		if err != nil {
			return fmt.Errorf("reading (got %q so far): %w", line, err)
		}
		if !expected(line) {
			return fmt.Errorf("unexpected line %q", line)
		}
		if line == until {
			return nil
		}
		if err := each(line); err != nil {
			return err
		}
	}
}

// slowRead reads c as a laptop on a busy Wi-Fi would, 16 KiB every 16 ms, and checks every
// line until last.
func slowRead(c *tester.Client, flood string, expected func(string) bool, last, name string) error {
	deadline := time.Now().Add(Deadline + 5*time.Second)
	c.Conn.SetReadDeadline(deadline)
	buffer := make([]byte, 16<<10)
	var partial []byte
	for tick := time.Now(); ; tick = tick.Add(16 * time.Millisecond) {
		time.Sleep(time.Until(tick))
		n, err := io.ReadFull(c.Conn, buffer)
		partial = append(partial, buffer[:n]...)
		for {
			end := bytes.IndexByte(partial, '\n')
			if end < 0 {
				break
			}
			raw := partial[:end+1]
			partial = partial[end+1:]
			if string(raw) == flood {
				continue // most lines: compared without a copy
			}
			line := string(raw)
			if !expected(line) {
				return fmt.Errorf("%s: unexpected line %q", name, line)
			}
			if line == last {
				return nil
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
}

// Every line of a flood arrives whole and in order, at about the budget's rate once the burst
// is spent; the flooder's own writes block in its kernel meanwhile, and it is told once why.
func TestFloodControlOrder(t *testing.T) {
	forEachFloodRoom(t, func(t *testing.T, room *floodRoom) {
		receiver := room.join(t, "receiver", false)
		flooder := room.join(t, "flooder", false, receiver)
		told := fmt.Sprintf("Server: you send faster than %d bytes/s, slowing you down\r\n", floodRate)
		if room.named { // stage 7 ends its lines with "\n" alone
			told = strings.TrimSuffix(told, "\r\n") + "\n"
		}

		// leaver goes while the flooder waits for its budget: select must go on watching the
		// flooder's descriptor, the highest, when it stops watching a lower one.
		leaver := room.join(t, "leaver", false, receiver, flooder)
		const total = 100_000 // 10 MB: more than the kernels hold, on either side
		var sent atomic.Int64
		tester.Flood{Conn: flooder.Conn, Line: tester.FloodLine, Count: total, Sent: &sent, Patience: 2 * Deadline}.Send()

		const window = 3 * time.Second
		var start time.Time
		var countAt []int // lines received by each quarter second after the first
		received := 0
		for {
			line := receiver.NextLine()
			if start.IsZero() {
				start = time.Now()
			}
			if received == floodBurst/100+300 {
				leaver.Close()
			}
			if room.named && line == "* leaver has left the room\n" {
				continue
			}
			want := room.relayed("flooder", strings.TrimSuffix(tester.FloodLine(received), "\r\n"))
			if line != want {
				t.Fatalf("line %d: got %q, want %q", received, line, want)
			}
			received++
			for time.Since(start) >= time.Duration(len(countAt))*window/12 {
				countAt = append(countAt, received)
			}
			if len(countAt) > 12 || received == total {
				break
			}
		}
		require.Greater(t, len(countAt), 12, "all %d lines arrived in %v: nothing slowed the flood", total, time.Since(start))
		// From half a second on, the burst is spent: what arrives comes at the rate.
		elapsed := time.Duration(len(countAt)-1-2) * window / 12
		rate := float64((received-countAt[2])*100) / elapsed.Seconds()
		t.Logf("first %v: %d lines (%d bytes, the burst is %d), then %.0f bytes/s; the flooder's kernel took %d lines",
			window/6, countAt[2], countAt[2]*100, floodBurst, rate, sent.Load())
		require.Greater(t, countAt[2]*100, floodBurst/2, "the burst arrives at once")
		require.InDelta(t, floodRate, rate, floodRate/2, "lines arrive at about -max-rate")
		require.Less(t, sent.Load(), int64(total), "the flooder's send blocks")
		require.Equal(t, told, flooder.NextLine())
		require.Equal(t, 1, room.count(room.slowedDown("flooder")), "the flood is logged once: %q", room.Lines())
	}, "-quiet")
}

// A shutdown still delivers what the server has read from a client that waits for its budget,
// and ends at once for a client that waits for its budget with nothing queued. Here a client
// that never reads, 4 MB behind (sent by 16 others), holds the shutdown for its whole second;
// the flooder, with nothing queued for it, is closed at the first pass, while it waits for its
// budget, and the loop must not watch its descriptor again (select would fail on it). A
// receiver that reads gets every line whole, then the end of the stream, and the server exits 0.
func TestFloodControlShutdown(t *testing.T) {
	t.Parallel()
	forEachFloodRoom(t, func(t *testing.T, room *floodRoom) {
		heavyIf(t, true) // the receiver must take 4 MB within the second the shutdown gives it
		const count = 40_000
		stalled := room.join(t, "stalled", true)
		receiver := room.join(t, "receiver", false)
		flooder := room.join(t, "flooder", false)
		senders := make([]*tester.Client, floodSenderCount(count))
		for k := range senders {
			senders[k] = room.join(t, fmt.Sprintf("s%d", k), false)
		}
		received := make(chan error, 1)
		go func() { // every line whole, until the end of the stream
			receiver.Conn.SetReadDeadline(time.Now().Add(3 * Deadline))
			for n := 0; ; n++ {
				line, err := receiver.Reader.ReadString('\n')
				if err == io.EOF && line == "" {
					received <- nil
					return
				}
				i := -1
				if at := strings.Index(line, "line "); at >= 0 {
					fmt.Sscanf(line[at:], "line %d", &i)
				}
				switch {
				case err != nil:
					received <- fmt.Errorf("after %d lines: %w", n, err)
					return
				case line == room.relayed("flooder", "y"):
				case i >= 0 && line == room.relayed(fmt.Sprintf("s%d", i/floodShare), strings.TrimSuffix(tester.FloodLine(i), "\r\n")):
				case room.named && strings.HasPrefix(line, "* "):
				default:
					received <- fmt.Errorf("after %d lines: %q", n, line)
					return
				}
			}
		}()
		stop := make(chan struct{})
		defer close(stop)
		floodWith(flooder, bytes.Repeat([]byte("y\n"), 32<<10), stop)
		room.WaitLine(t, room.slowedDown("flooder"))
		require.NoError(t, <-spreadFlood(senders, count))
		// Wait until only the stalled client has output waiting: the flooder, with none, is
		// closed at the shutdown's first pass, while it waits for its budget.
		for deadline := time.Now().Add(Deadline); ; time.Sleep(50 * time.Millisecond) {
			queues := printQueues(t, room.Server) // by descriptor: the stalled client's first
			waiting := 0
			for _, q := range queues[1:] {
				waiting += q.bytes
			}
			if queues[0].bytes > 0 && waiting == 0 {
				break
			}
			require.True(t, time.Now().Before(deadline), "queues: %+v", queues)
		}

		start := time.Now()
		room.Signal(t, syscall.SIGTERM)
		require.Equal(t, 0, room.WaitExit(t, 5*time.Second), "stderr: %q", room.Stderr())
		took := time.Since(start)
		require.NoError(t, <-received)
		t.Logf("the server exited %v after SIGTERM", took.Round(time.Millisecond))
		require.Less(t, took, 3*time.Second)
		room.WaitLine(t, "Server: shutting down")
		room.WaitLine(t, "Server: cut off 1 clients that did not take their output within a second")
		stalled.ExpectClosed("")
	}, "-quiet", "-max-pending", "16777216")
}

// A client that resets its connection while it waits for its budget is noticed once the
// server has read, at its rate, what its kernel still held for it; that is relayed whole and in
// order, and meanwhile the loop does not spin (epoll reports a hang-up even on a descriptor
// watched for nothing, so a client not read for now leaves its set).
func TestFloodControlReset(t *testing.T) {
	t.Parallel()
	forEachFloodRoom(t, func(t *testing.T, room *floodRoom) {
		receiver := room.join(t, "receiver", false)
		flooder := room.join(t, "flooder", false, receiver)
		marker := room.join(t, "marker", false, receiver)
		tester.Flood{Conn: flooder.Conn, Line: tester.FloodLine, Count: 100_000, Patience: 2 * Deadline}.Send()
		room.WaitLine(t, room.slowedDown("flooder"))

		// The receiver reads on its own, checking each line, until the marker. The reset throws
		// away what the flooder's kernel had not sent, so its last line may end early: the
		// server relays what came before the end of the stream as a line (lastwords.go), and
		// nothing of the flooder's may come after it.
		done := make(chan error, 1)
		go func() {
			receiver.Conn.SetReadDeadline(time.Now().Add(4 * Deadline))
			cut := false
			for i := 0; ; {
				line, err := receiver.Reader.ReadString('\n')
				want := room.relayed("flooder", strings.TrimSuffix(tester.FloodLine(i), "\r\n"))
				end := len(room.relayed("flooder", "")) - len(room.relayed("", "")) // "[flooder] " or ""
				switch {
				case err != nil:
					done <- fmt.Errorf("after %d lines: %w", i, err)
					return
				case line == room.relayed("marker", "after the reset"):
					done <- nil
					return
				case room.named && line == "* flooder has left the room\n":
				case !cut && line == want:
					i++
				case !cut && len(line) < len(want) && strings.HasPrefix(want, strings.TrimRight(line, "\r\n")) &&
					len(strings.TrimRight(line, "\r\n")) > end:
					cut = true
				default:
					done <- fmt.Errorf("line %d: got %q", i, line)
					return
				}
			}
		}()
		flooder.Reset()
		start := time.Now()
		var cpuBefore time.Duration
		if CPUSupported {
			var err error
			cpuBefore, err = tester.CPUTime(room.PID())
			require.NoError(t, err)
		}
		left := "Server: client disconnected"
		if room.named {
			left = "Server: flooder left"
		}
		// What the server's kernel held is read at the rate: that may take more than the
		// usual Deadline at the default (its receive buffer has held over 500 KB).
		for deadline := time.Now().Add(3 * Deadline); ; {
			line, ok := room.output.Next(time.Until(deadline), nil)
			require.True(t, ok, "the reset was not noticed within %v; lines: %q", 3*Deadline, room.Lines())
			if line == left {
				break
			}
		}
		noticed := time.Since(start)
		t.Logf("the reset was noticed %v after it", noticed.Round(time.Millisecond))
		if CPUSupported {
			// Over the whole wait, and a second at least, so that the few reads it takes
			// are no more than a trace.
			time.Sleep(time.Until(start.Add(time.Second)))
			cpuAfter, err := tester.CPUTime(room.PID())
			require.NoError(t, err)
			use := float64(cpuAfter-cpuBefore) / float64(time.Since(start))
			t.Logf("%.1f%% of a core from the reset until it was noticed", use*100)
			require.Less(t, use, 0.05, "the server spins on a client that reset while over its budget")
		}
		marker.Send("after the reset\n")
		require.NoError(t, <-done)
		// Eight times the default rate: what is proven is relative to the rate, and the
		// server's kernel holds over 500 KB, some 8 s at the default.
	}, "-quiet", "-max-rate", fmt.Sprint(8*floodRate))
}

// A write to a client that reset its connection fails, and its last words are read at once,
// whatever its budget: a broken connection can bring nothing more, so what the server's kernel
// holds for it is all there is. Here the budget is 1000 bytes a second and the client sends
// 5000 bytes, then resets: a line for it makes the server find out, and all 50 lines arrive,
// in order, long before the 4 seconds its rate would take.
func TestFloodControlLastWords(t *testing.T) {
	t.Parallel()
	forEachFloodRoom(t, func(t *testing.T, room *floodRoom) {
		receiver := room.join(t, "receiver", false)
		poker := room.join(t, "poker", false, receiver)
		flooder := room.join(t, "flooder", false, receiver, poker)
		var lines strings.Builder
		for i := range 50 {
			lines.WriteString(tester.FloodLine(i))
		}
		flooder.Send(lines.String())
		room.WaitLine(t, room.slowedDown("flooder"))
		flooder.Reset()
		poker.Send("poke\n")
		start := time.Now()
		poked := false
		for i := 0; i < 50; {
			line := receiver.NextLine()
			if !poked && line == room.relayed("poker", "poke") {
				poked = true
				continue
			}
			require.Equal(t, room.relayed("flooder", strings.TrimSuffix(tester.FloodLine(i), "\r\n")), line, "line %d", i)
			i++
		}
		took := time.Since(start)
		t.Logf("the last of 50 lines arrived %v after the poke", took.Round(time.Millisecond))
		require.Less(t, took, 2*time.Second, "at its rate the rest would take 4 s")
	}, "-quiet", "-max-rate", "1000", "-max-burst", "1000")
}

// A paste of 300 lines, 75 KB, is within the burst: it arrives at once, and nobody is slowed.
func TestFloodControlPaste(t *testing.T) {
	t.Parallel()
	forEachFloodRoom(t, func(t *testing.T, room *floodRoom) {
		receiver := room.join(t, "receiver", false)
		paster := room.join(t, "paster", false, receiver)
		var paste strings.Builder
		for i := range 300 {
			fmt.Fprintf(&paste, "%03d %s\n", i, strings.Repeat("p", 245))
		}
		start := time.Now()
		paster.Send(paste.String())
		for i := range 300 {
			want := room.relayed("paster", fmt.Sprintf("%03d %s", i, strings.Repeat("p", 245)))
			require.Equal(t, want, receiver.NextLine(), "line %d", i)
		}
		took := time.Since(start)
		t.Logf("300 lines, %d bytes, arrived in %v", paste.Len(), took.Round(time.Microsecond))
		require.Less(t, took, time.Second, "at -max-rate alone they would take %v",
			time.Duration(float64(paste.Len())/floodRate*float64(time.Second)))

		paster.Send("after the paste\n")
		require.Equal(t, room.relayed("paster", "after the paste"), receiver.NextLine())
		who := "client"
		if room.named {
			who = "paster"
		}
		room.WaitLine(t, "Server: received from "+who+": after the paste")
		require.Zero(t, room.count(room.slowedDown("paster")), "a paste is not a flood")
	})
}

// A client over its budget waits without waking the loop over and over: the server sleeps
// until the budget has come back (a timeout for the poller), and once the client has sent
// everything it is back to sleeping with no timeout at all. The log says once per episode
// that it was slowed down: a second flood after its bucket has filled again is a new one.
func TestFloodControlIdle(t *testing.T) {
	t.Parallel()
	const rate, burst = 2000, 1000
	forEachFloodRoom(t, func(t *testing.T, room *floodRoom) {
		receiver := room.join(t, "receiver", false)
		sender := room.join(t, "sender", false, receiver)
		slowed := room.slowedDown("sender")

		// 50 lines of 100 bytes: 10 at once, then 40 at 20 a second, for 2 seconds.
		var lines strings.Builder
		for i := range 50 {
			lines.WriteString(tester.FloodLine(i))
		}
		sender.Send(lines.String())
		expect := func(from, to int) {
			for i := from; i < to; i++ {
				want := room.relayed("sender", strings.TrimSuffix(tester.FloodLine(i), "\r\n"))
				require.Equal(t, want, receiver.NextLine(), "line %d", i)
			}
		}
		expect(0, 10)
		room.WaitLine(t, slowed)
		if CPUSupported {
			use := CPUUse(t, room.Process, 500*time.Millisecond)
			t.Logf("%.1f%% of a core while a client waits for its budget", use*100)
			require.Less(t, use, 0.02, "the server spins while a client waits for its budget")
		}
		expect(10, 50)
		require.Equal(t, 1, room.count(slowed), "slowed down once: %q", room.Lines())
		if CPUSupported {
			expectAsleep(t, room.Server, 500*time.Millisecond)
		}

		// The bucket is full again after half a second at 2000 bytes/s: a new episode.
		time.Sleep(time.Second)
		sender.Send(strings.Repeat(tester.FloodLine(0), 15))
		for range 15 {
			require.Equal(t, room.relayed("sender", strings.TrimSuffix(tester.FloodLine(0), "\r\n")), receiver.NextLine())
		}
		room.WaitLine(t, slowed)
		require.Equal(t, 2, room.count(slowed), "a second episode: %q", room.Lines())
	}, "-quiet", "-max-rate", fmt.Sprint(rate), "-max-burst", fmt.Sprint(burst))
}

// -max-rate and -max-burst are checked as the other flags are (a value that makes no sense is
// one line and exit status 2), -max-rate 0 turns flood control off, and -h still fits in 80
// columns.
func TestFloodControlFlags(t *testing.T) {
	t.Parallel()
	for _, stage := range hostileRooms {
		pkg := stage.pkg
		t.Run(pkg, func(t *testing.T) {
			bin := Binary(t, pkg)
			for _, args := range [][]string{{"-max-rate", "-1"}, {"-max-burst", "0"}, {"-max-burst", "-5"}} {
				p := Start(t, bin, nil, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
				require.Equal(t, 2, p.WaitExit(t, Deadline), "%v", args)
				stderr := p.Stderr()
				require.Equal(t, 1, strings.Count(stderr, "\n"), "one line for %v, got %q", args, stderr)
				require.True(t, strings.HasPrefix(stderr, pkg+": "+args[0]+" must be "), "got %q", stderr)
				require.Empty(t, p.Lines(), "%v", args)
			}

			help := Start(t, bin, nil, "-h")
			require.Equal(t, 0, help.WaitExit(t, Deadline))
			usage := help.Stderr()
			require.Contains(t, usage, "-max-rate int\n    \tbytes a client may send per second, 0 for no limit (default 65536)\n")
			require.Contains(t, usage, "-max-burst int\n    \tbytes a client may send at once, before -max-rate (default 262144)\n")
			for _, line := range strings.Split(usage, "\n") {
				columns := 0
				for _, r := range line {
					if r == '\t' {
						columns += 8 - columns%8
					} else {
						columns++
					}
				}
				require.LessOrEqual(t, columns, 80, "-h line %q", line)
			}

			// Off: 1 MB from one client arrives at once.
			s := StartServer(t, pkg, "-quiet", "-max-rate", "0")
			room := &floodRoom{Server: s, roomStage: stage, rate: floodRate}
			receiver := room.join(t, "receiver", false)
			sender := room.join(t, "sender", false, receiver)
			var flood strings.Builder
			for i := range 10_000 {
				flood.WriteString(tester.FloodLine(i))
			}
			go func() {
				sender.Conn.SetWriteDeadline(time.Now().Add(Deadline))
				sender.Conn.Write([]byte(flood.String()))
			}()
			start := time.Now()
			for i := range 10_000 {
				want := room.relayed("sender", strings.TrimSuffix(tester.FloodLine(i), "\r\n"))
				require.Equal(t, want, receiver.NextLine(), "line %d", i)
			}
			require.Less(t, time.Since(start), 5*time.Second, "at the default rate it would take over 10 s")
			require.Zero(t, room.count(room.slowedDown("sender")))
		})
	}
}

// Tests that move megabytes spread them over several senders, each within its burst, since a
// single sender is read at -max-rate (64 KiB/s): 8 MB from one client would take two minutes.

// floodShare is the most flood lines (of 100 bytes) one sender sends: 250 KB, within the burst.
const floodShare = 2500

// floodSenderCount is how many senders count flood lines need, floodShare each at most.
func floodSenderCount(count int) int { return (count + floodShare - 1) / floodShare }

// spreadFlood sends flood lines 0 to count-1 from senders, sender k lines k*floodShare on, all
// at once. Each sender reads what it is sent, as a chat client does. The channel yields the
// first write error, or nil once everything is sent.
func spreadFlood(senders []*tester.Client, count int) <-chan error {
	floods := make([]tester.Flood, len(senders))
	for k, c := range senders {
		go io.Copy(io.Discard, c.Conn)
		floods[k] = tester.Flood{Conn: c.Conn, Line: tester.FloodLine, First: k * floodShare, Count: min(floodShare, count-k*floodShare)}
	}
	return tester.Floods(floods)
}
