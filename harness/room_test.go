//go:build linux || darwin

package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
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

// Stage 5 makes the promises of a relay done right (one copy of a broadcast, bounded memory,
// the limits, select's ceiling, signals), and stage 6 those of a room you do not trust
// (nothing lost, nothing frozen, descriptors bounded). The tests in room*_test.go are written
// once, and each runs against every stage that makes its promise, under both pollers: stages 6
// and 7 keep stage 5's promises (relayRooms), and stage 7, stage 6 with names, keeps stage 6's
// (hostileRooms), since the top README sends an instructor to either. A room speaks to a stage
// the way that stage's clients do (stage 7's clients give a name first), and expects its lines
// in that stage's own words.

// roomStage is what a room test needs to know about a stage.
type roomStage struct {
	pkg   string
	eol   string // how the server ends every line it sends
	named bool   // clients give a name before they are in the room
}

var (
	leanRoom     = roomStage{pkg: stage5, eol: "\r\n"}
	hardenedRoom = roomStage{pkg: stage6, eol: "\r\n"}
	namedRoom    = roomStage{pkg: stage7, eol: "\n", named: true}

	relayRooms   = []roomStage{leanRoom, hardenedRoom, namedRoom} // a relay done right
	hostileRooms = []roomStage{hardenedRoom, namedRoom}           // a room you do not trust
)

// stage6 is the hardened relay: stage 5 fit for a room nobody vouches for.
const stage6 = "stage6-hardened"

// room is one stage with one poller, and the server it runs.
type room struct {
	roomStage
	poller string
	s      *Server
	log    func(t testing.TB) string // the server's next log line: s.NextLine unless a test reads stdout itself
	joined int                       // members so far, for their names
}

// member is a client in the room.
type member struct {
	*tester.Client
	name string       // as the log names it: "client" in stage 5
	got  atomic.Int64 // volume lines expectVolume has read at it so far
}

// forEachRoom runs test once per stage and poller, as subtests such as stage6-hardened/epoll,
// side by side.
func forEachRoom(t *testing.T, stages []roomStage, test func(t *testing.T, r *room)) {
	for _, stage := range stages {
		t.Run(stage.pkg, func(t *testing.T) {
			t.Parallel()
			forEachPoller(t, func(t *testing.T, poller string) {
				test(t, &room{roomStage: stage, poller: poller})
			})
		})
	}
}

// forEachRoomInTurn is forEachRoom one room after the other (forEachPollerInTurn).
func forEachRoomInTurn(t *testing.T, stages []roomStage, test func(t *testing.T, r *room)) {
	for _, stage := range stages {
		t.Run(stage.pkg, func(t *testing.T) {
			forEachPollerInTurn(t, func(t *testing.T, poller string) {
				test(t, &room{roomStage: stage, poller: poller})
			})
		})
	}
}

// start starts the stage's server with the room's poller and args.
func (r *room) start(t *testing.T, args ...string) *Server {
	t.Helper()
	r.s = StartServer(t, r.pkg, append([]string{"-poller", r.poller}, args...)...)
	r.log = r.s.NextLine
	return r.s
}

// join connects a client and brings it into the room: stage 7's gives the next free name.
func (r *room) join(t testing.TB) *member {
	t.Helper()
	return r.enter(t, Dial(t, r.s.Addr))
}

// enter brings a client already connected into the room, and returns once the server has it.
func (r *room) enter(t testing.TB, c *tester.Client) *member {
	t.Helper()
	require.Equal(t, stage5Connected, r.log(t))
	return r.enterConnected(t, c)
}

// enterConnected is enter once the log has said that the client is connected.
func (r *room) enterConnected(t testing.TB, c *tester.Client) *member {
	t.Helper()
	if !r.named {
		return &member{Client: c, name: "client"}
	}
	r.joined++
	m := &member{Client: c, name: fmt.Sprintf("m%d", r.joined)}
	require.Equal(t, stage7Welcome, c.NextLine())
	m.Send(m.name + "\n")
	require.Equal(t, "Server: "+m.name+" joined", r.log(t))
	require.True(t, strings.HasPrefix(c.NextLine(), "* The room "), "the newcomer's presence line")
	return m
}

// members joins n clients.
func (r *room) members(t testing.TB, n int) []*member {
	t.Helper()
	ms := make([]*member, n)
	for i := range ms {
		ms[i] = r.join(t)
	}
	return ms
}

// relayed is message as a receiver gets it from sender.
func (r *room) relayed(sender *member, message string) string {
	if r.named {
		return "[" + sender.name + "] " + message + r.eol
	}
	return message + r.eol
}

// message takes a relayed line back to the message and the sender's name ("client" in stage 5).
func (r *room) message(line string) (sender, message string) {
	line = strings.TrimSuffix(line, r.eol)
	if !r.named {
		return "client", line
	}
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if name, message, ok := strings.Cut(rest, "] "); ok {
			return name, message
		}
	}
	return "", line
}

// received is the log's line for a message from sender.
func (r *room) received(sender *member, message string) string {
	return "Server: received from " + sender.name + ": " + message
}

// left is the log's line for m's disconnection; why is "" for a client that left by itself.
func (r *room) left(m *member, why string) string {
	line := stage5Disconnected
	if r.named {
		line = "Server: " + m.name + " left"
	}
	if why != "" {
		line += " (" + why + ")"
	}
	return line
}

// goodbye is the last line a client the server drops is told.
func (r *room) goodbye(why string) string { return "Server: " + why + ", disconnecting you" + r.eol }

// tooMany is the line a client is turned away with when the server is out of descriptors.
func (r *room) tooMany() string { return "Server: too many connections, try again later" + r.eol }

// notice reports whether line is one of stage 7's lines about the room ("* bob has entered
// the room"), which come between messages whenever someone joins or leaves.
func (r *room) notice(line string) bool { return r.named && strings.HasPrefix(line, "* ") }

// read returns m's next line that is not a notice.
func (r *room) read(t testing.TB, m *member) string {
	t.Helper()
	for {
		if line := m.NextLine(); !r.notice(line) {
			return line
		}
	}
}

// expectQuiet proves that nothing but notices arrives at m for d.
func (r *room) expectQuiet(t testing.TB, m *member, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		if !r.named {
			m.ExpectNothing(left, "")
			return
		}
		m.Conn.SetReadDeadline(time.Now().Add(left))
		line, err := m.Reader.ReadString('\n')
		if err != nil {
			require.Empty(t, line, "half a line, then %v", err)
			return // the deadline passed with nothing
		}
		require.True(t, r.notice(line), "expected nothing for %v, got %q", d, line)
	}
}

// The volume tests move megabytes through the room. Stages 5 and 6 read a client no faster
// than its flood budget (-max-burst 262144 bytes at once, then -max-rate 65536 a second), so a
// test that must move a lot spreads it over several senders, each within its burst: the room
// as it is shipped, flood control on.

// senderBudget is what one sender sends in a volume test: within the burst of 256 KiB.
const senderBudget = 250_000

// floodLinesPerSender is how many volume lines fit in a sender's budget.
func floodLinesPerSender(size int) int { return senderBudget / size }

// volumeSize is the size of most volume tests' lines, and volumeLines how many of them each
// sender sends.
const (
	volumeSize  = 1000
	volumeLines = senderBudget / volumeSize
)

// flood has senders send their volume lines, paced by reader, and proves that reader gets
// every one, each sender's in order.
func (r *room) flood(t testing.TB, reader *member, senders []*member) {
	t.Helper()
	sent := sendVolume(senders, volumeLines, volumeSize, 0, reader)
	r.expectVolume(t, reader, senders, volumeLines, volumeSize)
	waitErr(t, sent, Deadline, "the flood")
}

// sendVolume makes each sender send count numbered lines of size bytes, sender k naming
// itself k (also in stage 5, where the relayed line does not name its sender), all at once,
// in writes of about 64 KiB; or, given a pause, one line per write with that pause after
// each, so that the server reads them in many small batches. Given a reader to pace them by,
// the senders together stay at most 2,000 lines ahead of what expectVolume has read at it: a
// test that reads as fast as it can is still slower than the server, and must not be taken
// for a client that does not read. The channel gets the first error, or nil once all is sent.
func sendVolume(senders []*member, count, size int, pause time.Duration, pace *member) <-chan error {
	floods := make([]tester.Flood, len(senders))
	var sent atomic.Int64
	for k, sender := range senders {
		floods[k] = tester.Flood{Conn: sender.Conn, Line: func(i int) string { return tester.NumberedLine(k, i, size, "\n") },
			Count: count, OneLinePerWrite: pause > 0, Pause: pause, Sent: &sent, Patience: 3 * Deadline}
		if pace != nil {
			floods[k].Read, floods[k].Ahead = &pace.got, 2000
		}
	}
	return tester.Floods(floods)
}

// drainInput reads and throws away everything ms are sent, until the test ends.
func drainInput(ms []*member) {
	for _, m := range ms {
		go func() {
			buf := make([]byte, 64<<10)
			for {
				m.Conn.SetReadDeadline(time.Now().Add(time.Hour))
				if _, err := m.Reader.Read(buf); err != nil {
					return
				}
			}
		}()
	}
}

// expectVolume reads at m every volume line of senders (count each, size bytes), checking
// that each sender's come whole and in order; lines of different senders may interleave.
// Notices are skipped.
func (r *room) expectVolume(t testing.TB, m *member, senders []*member, count, size int) {
	t.Helper()
	next := make([]int, len(senders))
	for range len(senders) * count {
		line := r.read(t, m)
		name, message := r.message(line)
		k, i, ok := tester.ParseNumbered(message)
		if !ok || k < 0 || len(message) != size-1 {
			t.Fatalf("%s got %d bytes %.60q..., not a volume line of %d bytes", m.name, len(line), line, size)
		}
		require.Less(t, k, len(senders), "%s got a line from sender %d", m.name, k)
		require.Equal(t, senders[k].name, name, "line %d of sender %d comes under another name", i, k)
		if i != next[k] {
			t.Fatalf("%s: from sender %d, got line %d, want line %d", m.name, k, i, next[k])
		}
		next[k]++
		m.got.Add(1)
	}
}

// waitErr waits for an error from a channel that sendVolume returned.
func waitErr(t testing.TB, done <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-time.After(d):
		t.Fatalf("%s: not done after %v", what, d)
	}
}

// parallel runs f for every member at once, and waits.
func parallel(ms []*member, f func(m *member)) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func() { defer wg.Done(); f(m) }()
	}
	wg.Wait()
}

// A log that nobody reads (a pipe whose reader stopped, a terminal paused with Ctrl-S) must
// not stop the relay, nor a shutdown: lines that do not fit in the backlog are dropped, and
// counted once the log moves again.
func TestRoomBlockedLog(t *testing.T) {
	t.Parallel()
	forEachRoom(t, hostileRooms, func(t *testing.T, r *room) {
		stdout, w, err := os.Pipe()
		require.NoError(t, err)
		defer stdout.Close()
		cmd := exec.Command(Binary(t, r.pkg), "-addr", "127.0.0.1:0", "-poller", r.poller)
		cmd.Stdout = w
		require.NoError(t, cmd.Start())
		w.Close()
		var exitErr error
		exited := make(chan struct{})
		go func() { exitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })

		lines := make(chan string)
		go func() {
			defer close(lines)
			for log := bufio.NewScanner(stdout); log.Scan(); {
				select {
				case lines <- log.Text():
				case <-t.Context().Done():
					return
				}
			}
		}()
		r.log = func(t testing.TB) string {
			t.Helper()
			select {
			case line, ok := <-lines:
				require.True(t, ok, "the log ended")
				return line
			case <-time.After(Deadline):
				t.Fatalf("no log line within %v", Deadline)
				return ""
			}
		}
		port := StartedPort(r.log(t))
		require.NotEmpty(t, port, "the started line")
		r.log(t) // the poller's line
		r.s = &Server{Addr: "127.0.0.1:" + port}
		receiver := r.join(t)
		senders := r.members(t, 24)
		drainInput(senders)

		// From here on nobody reads the log. 3 MB of messages make 3 MB of log lines: more
		// than the pipe holds and the server's backlog of 1 MiB together.
		r.flood(t, receiver, senders[:12])

		// Read the log again: everything it kept comes out, then the count of what it dropped.
		dropped := regexp.MustCompile(`^Server: \d+ log lines dropped: standard output is not being read$`)
		kept := regexp.MustCompile(`^Server: received from \w+: from 0(0\d|1[01]) line \d{7} -+$`)
		for {
			line := r.log(t)
			if dropped.MatchString(line) {
				break
			}
			require.Regexp(t, kept, line)
		}

		// Blocked again, a shutdown still happens, at once.
		r.flood(t, receiver, senders[12:])
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case <-exited:
			require.NoError(t, exitErr, "exit status")
		case <-time.After(5 * time.Second):
			t.Fatal("SIGTERM did not stop a server whose log is blocked")
		}
		receiver.ExpectEOF()
	})
}

// On SIGTERM the server stops accepting and reading, and gives what it has queued a second to
// go out: a client that reads gets every whole line that was queued for it, then the end of
// the stream; one that never reads is cut off after that second. What is sent after the
// signal is relayed to nobody, not even the last line of a client that then resets its
// connection, which epoll reports whatever it is asked.
func TestRoomShutdownDelivers(t *testing.T) {
	t.Parallel()
	forEachRoom(t, hostileRooms, func(t *testing.T, r *room) {
		heavyIf(t, true) // late must take 5 MB within the second the shutdown gives it
		r.start(t, "-quiet", "-max-pending", "16777216")
		healthy := r.join(t)
		late := r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		stalled := r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		leaver := r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		senders := r.members(t, 20)
		drainInput(senders)
		// 5 MB: more than the kernels buffer for late, stalled and leaver (about 3 MB on
		// Linux), less than -max-pending. Once healthy has it all, the server has read it all,
		// and queued the rest for the three.
		r.flood(t, healthy, senders)
		waitBehind(t, r.s, 3) // the senders have taken what they were sent: the three are behind

		start := time.Now()
		r.s.Signal(t, syscall.SIGTERM)
		require.Equal(t, "Server: shutting down", r.log(t))
		stalled.Send("sent after the signal\n")
		leaver.Send("sent after the signal\n")
		leaver.Reset()
		// Take late's stream to its end as fast as it comes, and check it after: the second
		// the shutdown gives is for the server to deliver, not for this test to check lines.
		late.Conn.SetReadDeadline(time.Now().Add(Deadline))
		stream, err := io.ReadAll(late.Reader)
		require.NoError(t, err, "late's stream should end in good order")
		if r.named { // the room is told that the leaver has left: not a message
			stream = bytes.ReplaceAll(stream, []byte("* "+leaver.name+" has left the room\n"), nil)
		}
		late.Reader = bufio.NewReader(bytes.NewReader(stream))
		r.expectVolume(t, late, senders, volumeLines, volumeSize)
		late.ExpectEOF()
		healthy.ExpectEOF()
		require.Equal(t, 0, r.s.WaitExit(t, 5*time.Second))
		// A second for the queues, and one at most for the log: not a wait for the stalled.
		require.Less(t, time.Since(start), 4*time.Second)
		require.Equal(t, r.left(leaver, ""), r.log(t))
		require.Equal(t, "Server: cut off 1 clients that did not take their output within a second", r.log(t))
		stalled.ExpectClosed("")
	})
}

// heavy lets one test at a time move megabytes, or storm the server with connections, against
// a deadline of a second or so: on a machine of two cores, several such tests side by side
// would starve the very readers whose timing they prove. Tests that only wait go on beside it.
var heavy = make(chan struct{}, 1)

// heavyIf takes the heavy slot until the test ends, if the test is one of those.
func heavyIf(t *testing.T, is bool) {
	if is {
		heavy <- struct{}{}
		t.Cleanup(func() { <-heavy })
	}
}

// waitBehind waits until exactly behind clients have output waiting in the server, and their
// queues have stopped changing, and returns the queues.
func waitBehind(t *testing.T, s *Server, behind int) []queueLine {
	t.Helper()
	var queues, waiting []queueLine
	for deadline := time.Now().Add(Deadline); ; time.Sleep(100 * time.Millisecond) {
		before := waiting
		queues, waiting = printQueues(t, s), nil
		for _, q := range queues {
			if q.bytes > 0 {
				waiting = append(waiting, q)
			}
		}
		if len(waiting) == behind && slices.Equal(before, waiting) {
			return queues
		}
		require.True(t, time.Now().Before(deadline), "want %d clients behind, got queues %+v", behind, queues)
	}
}

// A client that fell far behind holds a long queue; once it has caught up, the queue is given
// back, not kept at its largest for the rest of the client's life. SIGUSR1 makes the server
// print each client's queue.
func TestRoomQueueGivenBack(t *testing.T) {
	t.Parallel()
	forEachRoom(t, hostileRooms, func(t *testing.T, r *room) {
		r.start(t, "-quiet", "-max-pending", "67108864")
		late := r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		senders := r.members(t, 16)
		drainInput(senders)
		// One line per write, a millisecond apart, so that the server reads them in many small
		// batches; 4 MB, more than the kernels buffer for late (about 3 MB on Linux).
		waitErr(t, sendVolume(senders, volumeLines, volumeSize, time.Millisecond, nil), 3*Deadline, "the senders")
		var behind queueLine
		for _, q := range waitBehind(t, r.s, 1) {
			if q.bytes > 0 {
				behind = q
			}
		}
		require.Greater(t, behind.batches, 64, "late should be far behind, in many batches")
		t.Logf("behind: %+v", behind)
		r.expectVolume(t, late, senders, volumeLines, volumeSize)
		r.expectQuiet(t, late, 100*time.Millisecond)
		for _, q := range printQueues(t, r.s) {
			require.Zero(t, q.bytes)
			require.LessOrEqual(t, q.room, 64, "a queue that has caught up keeps room for %d batches", q.room)
		}
	})
}

// A storm of connections is accepted a bounded number per pass, so that a client already
// there is served between two handfuls instead of after the whole storm. The storm waits in
// the listen queue while the server is stopped; the line is sent once the log shows the
// first connections, so that it arrives while the server is accepting, and it must be relayed
// before half the storm is in. Under select, connections past descriptor 1023 are refused as
// they are accepted: a refusal is an accept too.
func TestRoomAcceptStorm(t *testing.T) {
	// Alone, one poller after the other: it counts the connections the server accepts before
	// this test, busy with nothing else, gets a line through.
	forEachRoomInTurn(t, hostileRooms, func(t *testing.T, r *room) {
		const storm = 2000
		needDescriptors(t, storm+100)
		r.start(t)
		ms := r.members(t, 2)
		r.s.Signal(t, syscall.SIGSTOP)
		waitStopped(t, r.s.PID())
		for range storm {
			Dial(t, r.s.Addr) // queued by the kernel while the server sleeps
		}
		r.s.Signal(t, syscall.SIGCONT)
		accepted := func(line string) bool {
			return line == stage5Connected || strings.HasPrefix(line, "Server: refused a connection: descriptor")
		}
		require.True(t, accepted(r.log(t)))
		ms[0].Send("during the storm\n")
		require.Equal(t, r.relayed(ms[0], "during the storm"), r.read(t, ms[1]))
		connected := 1
		for line := r.log(t); line != r.received(ms[0], "during the storm"); line = r.log(t) {
			require.True(t, accepted(line), "log line %q", line)
			connected++
		}
		t.Logf("the line was relayed after %d of %d connections", connected, storm)
		require.Less(t, connected, storm/2, "the storm held up a client that was already there")
	})
}

// A client that never reads is dropped once too much waits for it (1 MiB here, to be quick);
// meanwhile a healthy client gets every line, in order, without waiting for it.
func TestRoomSlowReader(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		r.start(t, "-quiet", "-max-pending", "1048576")
		healthy := r.join(t)
		stalled := r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		senders := r.members(t, 20)
		drainInput(senders)
		// 5 MB: more than the kernels buffer for stalled (about 3 MB on Linux) and the limit.
		r.flood(t, healthy, senders)
		require.Equal(t, r.left(stalled, "not reading: more than 1048576 bytes pending"), r.log(t))
		stalled.ExpectClosed("")
		r.expectQuiet(t, healthy, 100*time.Millisecond)
	})
}

// The limits guard the server against one client: a line over -max-line, finished or not,
// gets its sender dropped, and no part of it reaches anyone; more than -max-pending waiting
// for a client gets that client dropped, also when one line does it to several at once. Each
// is told why in a last line, and the others go on.
func TestRoomLimits(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		r.start(t, "-quiet", "-max-line", "2000", "-max-pending", "2500")
		ms := r.members(t, 3)
		a, long, unfinished := ms[0], ms[1], ms[2]
		long.Send("exactly 2000 " + strings.Repeat("x", 1987) + "\r\n")
		want := r.relayed(long, "exactly 2000 "+strings.Repeat("x", 1987))
		require.Equal(t, want, r.read(t, a))
		require.Equal(t, want, r.read(t, unfinished))

		// More follows in the same write: the server drops the client with that still unread,
		// and must read it before it closes, or the close is a reset, not an end.
		long.Send(strings.Repeat("x", 2001) + "\n" + strings.Repeat("more\n", 20_000))
		require.Equal(t, r.left(long, "line longer than 2000 bytes"), r.log(t))
		require.Equal(t, r.goodbye("line longer than 2000 bytes"), r.read(t, long))
		long.ExpectEOF()
		unfinished.Send(strings.Repeat("y", 2002)) // no end in sight: dropped without waiting
		require.Equal(t, r.left(unfinished, "line longer than 2000 bytes"), r.log(t))
		require.Equal(t, r.goodbye("line longer than 2000 bytes"), r.read(t, unfinished))
		unfinished.ExpectEOF()
		r.expectQuiet(t, a, 200*time.Millisecond)

		// Two lines in one write, too big together for everyone's queue: each receiver is
		// dropped, none skipped, and the sender stays.
		others := r.members(t, 3)
		a.Send(strings.Repeat("z", 1500) + "\n" + strings.Repeat("z", 1500) + "\n")
		var drops []string
		for range others {
			drops = append(drops, r.log(t))
		}
		for _, m := range others {
			require.Contains(t, drops, r.left(m, "not reading: more than 2500 bytes pending"))
			require.Equal(t, r.goodbye("more than 2500 bytes waiting for you"), r.read(t, m))
			m.ExpectEOF()
		}
		late := r.join(t)
		late.Send("still here?\n")
		require.Equal(t, r.relayed(late, "still here?"), r.read(t, a))
	})
}

// select cannot watch descriptor 1024 or above: such a connection is closed at once with a
// line that says why, and everyone already connected is still served.
func TestRoomSelectLimit(t *testing.T) {
	t.Parallel()
	needDescriptors(t, 1200)
	for _, stage := range relayRooms {
		t.Run(stage.pkg, func(t *testing.T) {
			r := &room{roomStage: stage, poller: "select"}
			r.start(t)
			var clients []*tester.Client
			refused := 0
			for len(clients) < 1100 && refused < 3 {
				c := Dial(t, r.s.Addr)
				switch line := r.log(t); line {
				case stage5Connected:
					clients = append(clients, c)
				case "Server: refused a connection: descriptor 1024 is past select's limit of 1024 (FD_SETSIZE); try -poller " + NativePoller():
					refused++
					c.ExpectClosed("")
					c.Close()
				default:
					t.Fatalf("unexpected line %q", line)
				}
			}
			require.Equal(t, 3, refused, "with %d clients connected", len(clients))
			require.Greater(t, len(clients), 1000)

			first, last := r.enterConnected(t, clients[0]), r.enterConnected(t, clients[len(clients)-1])
			first.Send("still served\n")
			require.Equal(t, r.relayed(first, "still served"), r.read(t, last))
			last.Send("me too\n")
			require.Equal(t, r.relayed(last, "me too"), r.read(t, first))
		})
	}
}

// queueLine is one client's queue, as SIGUSR1 makes the server print it.
type queueLine struct{ bytes, batches, room int }

var queueLinePattern = regexp.MustCompile(`^Server: client on descriptor \d+: (\d+) bytes waiting in (\d+) batches, room for (\d+)$`)

// printQueues asks the server for its queues (SIGUSR1) and reads them from its log.
func printQueues(t *testing.T, s *Server) []queueLine {
	t.Helper()
	s.Signal(t, syscall.SIGUSR1)
	header := s.NextLine(t)
	m := regexp.MustCompile(`^Server: (\d+) clients$`).FindStringSubmatch(header)
	require.NotNil(t, m, "got %q", header)
	n, _ := strconv.Atoi(m[1])
	queues := make([]queueLine, n)
	for i := range queues {
		line := s.NextLine(t)
		m := queueLinePattern.FindStringSubmatch(line)
		require.NotNil(t, m, "got %q", line)
		queues[i].bytes, _ = strconv.Atoi(m[1])
		queues[i].batches, _ = strconv.Atoi(m[2])
		queues[i].room, _ = strconv.Atoi(m[3])
	}
	return queues
}

// expectEnd reads m's connection to its end, in good order (not a reset), within the
// Deadline, with nothing but notices before it.
func (r *room) expectEnd(t testing.TB, m *member) {
	t.Helper()
	require.NoError(t, m.Conn.SetReadDeadline(time.Now().Add(Deadline)))
	rest, err := io.ReadAll(m.Reader)
	require.NoError(t, err, "the connection should end in good order")
	for _, line := range strings.SplitAfter(string(rest), "\n") {
		require.True(t, line == "" || r.notice(line), "got %q before the end of the stream", line)
	}
}

// A reset connection and a half-closed one are both clients that left: logged, forgotten,
// and the loop goes back to sleep (a half-closed socket is readable forever).
func TestRoomResetAndHalfClose(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		r.start(t)
		ms := r.members(t, 4)

		ms[0].Reset()
		require.Equal(t, r.left(ms[0], ""), r.log(t))

		require.NoError(t, ms[1].Conn.(*net.TCPConn).CloseWrite())
		require.Equal(t, r.left(ms[1], ""), r.log(t))
		ms[1].ExpectClosed("")

		ms[2].Send("anyone left?\n")
		require.Equal(t, r.relayed(ms[2], "anyone left?"), r.read(t, ms[3]))
		require.Equal(t, r.received(ms[2], "anyone left?"), r.log(t))
		if CPUSupported {
			expectAsleep(t, r.s, 500*time.Millisecond)
		}
	})
}

// When one pass handles several events, handling an early one may drop a client whose own
// event comes later in the same pass: that event is stale and must be ignored. Here a
// receiver's output limit is 60 bytes (room for stage 7's welcome and notices), so the first
// long line it is sent drops it.
func TestRoomStaleEvent(t *testing.T) {
	t.Parallel()
	forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
		r.start(t, "-max-pending", "60")
		ms := r.members(t, 2)
		r.expectQuiet(t, ms[0], 50*time.Millisecond) // the notice of the second join, read
		r.s.Signal(t, syscall.SIGSTOP)               // frozen, so that both are ready in one pass
		waitStopped(t, r.s.PID())
		long := "longer than sixty bytes, " + strings.Repeat("-", 40)
		ms[0].Send(long + "\n")
		ms[1].Send("x\n")
		r.s.Signal(t, syscall.SIGCONT)
		require.Equal(t, r.received(ms[0], long), r.log(t))
		require.Equal(t, r.left(ms[1], "not reading: more than 60 bytes pending"), r.log(t))
		ms[1].ExpectClosed("")

		late := r.join(t)
		ms[0].Send("hi\n")
		require.Equal(t, r.relayed(ms[0], "hi"), r.read(t, late))
		require.Equal(t, r.received(ms[0], "hi"), r.log(t))
	})
}

// SIGINT (Ctrl-C) and SIGTERM stop the server cleanly: every client sees the end of the
// stream, and the exit status is 0.
func TestRoomSignals(t *testing.T) {
	t.Parallel()
	for name, sig := range map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "SIGTERM": syscall.SIGTERM} {
		t.Run(name, func(t *testing.T) {
			forEachRoom(t, relayRooms, func(t *testing.T, r *room) {
				r.start(t)
				ms := r.members(t, 2)
				start := time.Now()
				r.s.Signal(t, sig)
				require.Equal(t, 0, r.s.WaitExit(t, 5*time.Second), "exit status after %v", sig)
				require.Less(t, time.Since(start), 2*time.Second, "the server should stop within a second")
				require.Equal(t, "Server: shutting down", r.log(t))
				for _, m := range ms {
					r.expectEnd(t, m)
				}
			})
		})
	}
}
