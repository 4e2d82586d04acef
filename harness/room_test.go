//go:build linux || darwin

package harness

import (
	"bufio"
	"bytes"
	"errors"
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
			// It wakes ten times a second to read the client's next 200 bytes, and measured up
			// to 2.4% of a core doing so: a loop that spun while the client waited takes all of one.
			require.Less(t, use, 0.05, "the server spins while a client waits for its budget")
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
				require.LessOrEqual(t, columns(line), 80, "-h line %q", line)
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
