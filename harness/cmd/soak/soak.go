package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// A soak run churns connections against a running chat server for a while and checks that
// nothing was lost on the way: receivers stay connected for the whole run, while senders
// connect, send numbered lines and leave, over and over, in every way a real client leaves.
// Each staying receiver must get every complete line of every sender (and, as stage 6
// promises, a last line cut short by the sender's close), each sender's lines in order, once
// each and unchanged. Afterwards the server must hold no more sockets than before and sleep. `go run ./harness/cmd/soak` runs it; TestStage6Soak runs a short one.

// SoakConfig says what a soak run does: DefaultSoakConfig, with what the caller changes.
type SoakConfig struct {
	Addr           string        // the server, host:port
	Duration       time.Duration // how long senders churn
	Receivers      int           // connections that stay for the whole run and check every line
	Senders        int           // sender connections open at once; each is replaced as soon as it has left
	MaxConnections int           // stop churning after this many sender connections in all
	MaxLines       int           // most lines one sender connection sends (at most 60)
	Seed           uint64        // random choices (kinds, line counts, chunking) come from it
	ServerPID      int           // for the descriptor and CPU checks; 0 skips them
	IdleWindow     time.Duration // how long to measure the server's CPU once the run is over
	Quiet          time.Duration // give up waiting for deliveries after this long without one
}

// DefaultSoakConfig is what `go run ./harness/cmd/soak` does without flags (for 10 seconds).
var DefaultSoakConfig = SoakConfig{
	Duration:       10 * time.Second,
	Receivers:      8,
	Senders:        8,
	MaxConnections: 50_000,
	MaxLines:       20,
	Seed:           1,
	IdleWindow:     time.Second,
	Quiet:          2 * time.Second,
}

// The ways a sender leaves, each a case a server must get right.
const (
	leaveGracefully   = iota // lines in many small writes, then shutdown(SHUT_WR), read until EOF, close
	leaveAtOnce              // every line in one write, then close at once (unread input makes it a reset)
	leaveUnterminated        // lines and a last one without terminator, then close
	leaveSilently            // connect and close without a word
	leaveKinds
)

var leaveNames = [leaveKinds]string{
	"left gracefully", "closed at once", "ended with an unterminated line", "left without a word",
}

const maxSoakLines = 60 // lines per connection fit in a uint64 bitmap, with room for the last one

// soakSender is one sender connection, as the sender recorded it.
type soakSender struct {
	kind         int
	complete     int   // complete lines it wrote (numbered 0 to complete-1)
	unterminated bool  // it then wrote line number `complete` without terminator
	err          error // a write that failed: its lines are not required
}

// SoakReport is what a soak run found.
type SoakReport struct {
	Config       SoakConfig
	Connections  [leaveKinds]int // sender connections by the way they left
	Lines        int             // complete lines sent
	Unterminated int             // last lines sent without terminator
	Checked      int64           // deliveries received and checked
	Lost         int64           // required deliveries that never came
	Reordered    int64           // lines that came after a later line of the same sender
	Duplicated   int64           // lines that came twice
	Corrupted    int64           // lines that are not a line some sender sent
	LastRelayed  int64           // unterminated last lines relayed (summed over receivers)
	LastMissed   int64           // unterminated last lines not relayed
	Problems     []string        // the first problems in detail
	problemCount int

	// The server's open descriptors before the run and after it.
	DescriptorsBefore, DescriptorsAfter tester.Descriptors
	DescriptorsChecked                  bool
	IdleCPU                             float64 // share of one core after the run
	IdleChecked                         bool
	Elapsed                             time.Duration
	failures                            []string // shown whatever their number
}

const maxProblemExamples = 12

func (r *SoakReport) problem(format string, args ...any) {
	r.problemCount++
	if len(r.Problems) < maxProblemExamples {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// fail notes a failure of the run as a whole, always shown.
func (r *SoakReport) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// Failed says whether the run found anything wrong.
func (r *SoakReport) Failed() bool {
	return len(r.failures) > 0 || r.problemCount > 0 || r.Lost+r.Reordered+r.Duplicated+r.Corrupted > 0 ||
		r.LastMissed > 0
}

// String is the report for a person, one fact a line.
func (r *SoakReport) String() string {
	var b strings.Builder
	c := r.Config
	total := 0
	var kinds []string
	for kind, n := range r.Connections {
		total += n
		kinds = append(kinds, fmt.Sprintf("%d %s", n, leaveNames[kind]))
	}
	fmt.Fprintf(&b, "soak: %d receivers stayed for %v while %d senders at a time churned: %d sender connections (%s)\n",
		c.Receivers, r.Elapsed.Round(time.Millisecond), c.Senders, total, strings.Join(kinds, ", "))
	fmt.Fprintf(&b, "soak: %d complete lines sent, each to %d receivers; deliveries checked %d: lost %d, reordered %d, duplicated %d, corrupted %d\n",
		r.Lines, c.Receivers, r.Checked, r.Lost, r.Reordered, r.Duplicated, r.Corrupted)
	fmt.Fprintf(&b, "soak: last lines without terminator: %d of %d relayed\n",
		r.LastRelayed, int64(r.Unterminated)*int64(c.Receivers))
	if r.DescriptorsChecked {
		fmt.Fprintf(&b, "soak: server sockets: %d before, %d after (all descriptors: %d, %d)\n",
			r.DescriptorsBefore.Sockets, r.DescriptorsAfter.Sockets, r.DescriptorsBefore.All, r.DescriptorsAfter.All)
	} else {
		b.WriteString("soak: server descriptors: not checked (needs the server's pid and Linux's /proc)\n")
	}
	if r.IdleChecked {
		fmt.Fprintf(&b, "soak: server CPU afterwards: %.1f%% of a core over %v\n", 100*r.IdleCPU, c.IdleWindow)
	} else {
		b.WriteString("soak: server CPU afterwards: not checked (needs the server's pid and Linux's /proc)\n")
	}
	if !r.Failed() {
		b.WriteString("soak: OK\n")
		return fitted(b.String())
	}
	b.WriteString("soak: FAILED\n")
	if r.LastMissed > 0 {
		fmt.Fprintf(&b, "  %d unterminated last lines were not relayed: a client's last line, cut short by its close, is what it meant to say\n", r.LastMissed)
	}
	for _, f := range r.failures {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	if r.problemCount > 0 {
		fmt.Fprintf(&b, "  %d problems; the first:\n", r.problemCount)
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	return fitted(b.String())
}

// fitted wraps each line of a report to fit an 80-column terminal, the rest of a line
// indented under its start.
func fitted(report string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(report, "\n"), "\n") {
		text := strings.TrimLeft(line, " ")
		indent := line[:len(line)-len(text)]
		b.WriteString(tester.Wrap(text, indent, indent+"      ", tester.ReportWidth))
	}
	return b.String()
}

// soakLine is line seq of sender id, with its terminator: a numbered line that names its
// sender, its length depending on both, so that a line cut or changed on the way shows.
func soakLine(id, seq int, terminator string) string {
	return soakText(id, seq) + terminator
}

func soakText(id, seq int) string {
	return tester.NumberedLine(id, seq, 22+(id*31+seq*17)%97, "")
}

// parseSoakLine reads a relayed line without its terminator; ok is false for anything that
// is not exactly a line some sender could have sent.
func parseSoakLine(line []byte) (id, seq int, ok bool) {
	id, seq, ok = tester.ParseNumbered(string(line))
	if !ok || id < 0 || seq > maxSoakLines {
		return 0, 0, false
	}
	return id, seq, string(line) == soakText(id, seq)
}

const soakSyncLine = "soak sync"

// soakReceiver reads one staying connection and keeps what it saw, per sender.
type soakReceiver struct {
	index  int
	conn   net.Conn
	synced atomic.Bool
	lines  atomic.Int64 // lines received, to see that deliveries still come
	done   chan struct{}

	mu                                     sync.Mutex // the run waits for deliveries while the receiver reads
	seen                                   []uint64   // per sender: a bit per line number received
	highest                                []int      // per sender: highest line number received, -1 for none
	checked, reordered, duplicated, broken int64
	problems                               []string
	err                                    error // how its connection ended, if not by our close
}

func (r *soakReceiver) run(senders *atomic.Int64) {
	defer close(r.done)
	in := bufio.NewReaderSize(r.conn, 64<<10)
	for {
		line, err := in.ReadSlice('\n')
		if err != nil {
			if len(line) > 0 {
				r.note("receiver %d: an unterminated %q before the connection ended", r.index, line)
				r.broken++
			}
			r.err = err
			return
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if string(line) == soakSyncLine {
			r.synced.Store(true)
			continue
		}
		r.lines.Add(1)
		r.mu.Lock()
		r.record(line, senders.Load())
		r.mu.Unlock()
	}
}

// record checks one line from a sender and notes it as seen.
func (r *soakReceiver) record(line []byte, senders int64) {
	r.checked++
	id, seq, ok := parseSoakLine(line)
	if !ok || int64(id) >= senders {
		r.broken++
		r.note("receiver %d: corrupted line %q", r.index, line)
		return
	}
	for len(r.seen) <= id {
		r.seen = append(r.seen, 0)
		r.highest = append(r.highest, -1)
	}
	switch {
	case r.seen[id]&(1<<seq) != 0:
		r.duplicated++
		r.note("receiver %d: line %d of S%d came twice", r.index, seq, id)
	case seq < r.highest[id]:
		r.reordered++
		r.note("receiver %d: line %d of S%d came after its line %d", r.index, seq, id, r.highest[id])
	}
	r.seen[id] |= 1 << seq
	r.highest[id] = max(r.highest[id], seq)
}

// missing counts the lines of sent that r still waits for.
func (r *soakReceiver) missing(sent []*soakSender) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for id, s := range sent {
		if s.err != nil {
			continue
		}
		want := uint64(1)<<s.complete - 1
		if s.unterminated {
			want |= 1 << s.complete
		}
		var seen uint64
		if id < len(r.seen) {
			seen = r.seen[id]
		}
		n += bits.OnesCount64(want &^ seen)
	}
	return n
}

func (r *soakReceiver) note(format string, args ...any) {
	if len(r.problems) < maxProblemExamples {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// Soak runs a soak against the server at c.Addr. An error means the run could not be made
// (the server refused the receivers, say); what the run found is in the report.
func Soak(c SoakConfig) (*SoakReport, error) {
	c.MaxLines = min(c.MaxLines, maxSoakLines)
	report := &SoakReport{Config: c}
	began := time.Now()

	// Descriptors: a baseline before we connect anything.
	if c.ServerPID > 0 {
		if n, err := tester.OpenDescriptors(c.ServerPID); err == nil {
			report.DescriptorsChecked = true
			report.DescriptorsBefore = n
		}
	}

	var senderCount atomic.Int64 // sender ids handed out so far
	receivers := make([]*soakReceiver, 0, c.Receivers)
	closeReceivers := func() {
		for _, r := range receivers {
			r.conn.Close()
		}
		for _, r := range receivers {
			<-r.done
		}
	}
	for i := range c.Receivers {
		conn, err := net.DialTimeout("tcp", c.Addr, harness.Deadline)
		if err != nil {
			closeReceivers()
			return nil, fmt.Errorf("receiver %d: %w", i, err)
		}
		r := &soakReceiver{index: i, conn: conn, done: make(chan struct{})}
		receivers = append(receivers, r)
		go r.run(&senderCount)
	}
	if err := soakSync(c.Addr, receivers); err != nil {
		closeReceivers()
		return nil, err
	}

	// Churn: c.Senders workers, each a sender connection after another, until time is up.
	var mu sync.Mutex
	var sent []*soakSender // indexed by sender id
	var connections atomic.Int64
	stop := time.Now().Add(c.Duration)
	var workers sync.WaitGroup
	for w := range c.Senders {
		workers.Add(1)
		go func() {
			defer workers.Done()
			random := rand.New(rand.NewPCG(c.Seed, uint64(w)))
			for time.Now().Before(stop) && connections.Add(1) <= int64(c.MaxConnections) {
				mu.Lock()
				id := len(sent)
				s := &soakSender{kind: random.IntN(leaveKinds)}
				sent = append(sent, s)
				senderCount.Store(int64(len(sent))) // under the lock, so that it only grows
				mu.Unlock()
				soakSend(c.Addr, id, s, random, c.MaxLines)
			}
		}()
	}
	workers.Wait()

	// Every sender has left: wait until each receiver has every required line, or until
	// nothing has come for c.Quiet (then something is lost).
	lastProgress, lastTotal := time.Now(), int64(-1)
	for {
		total, complete := int64(0), true
		for _, r := range receivers {
			total += r.lines.Load()
			select {
			case <-r.done: // its connection ended: nothing more will come
			default:
				complete = complete && r.missing(sent) == 0
			}
		}
		if complete {
			break
		}
		if total != lastTotal {
			lastProgress, lastTotal = time.Now(), total
		} else if time.Since(lastProgress) > c.Quiet {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Whatever is still on its way now has had c.Quiet to arrive; a little longer lets a
	// duplicate that trails behind show.
	time.Sleep(50 * time.Millisecond)
	for _, r := range receivers {
		r.conn.SetReadDeadline(time.Now()) // stops the reader; it is not a failure
	}
	for _, r := range receivers {
		<-r.done
		r.conn.Close()
	}
	report.Elapsed = time.Since(began)

	// Tally what each receiver saw against what each sender sent.
	for id, s := range sent {
		report.Connections[s.kind]++
		report.Lines += s.complete
		if s.unterminated {
			report.Unterminated++
		}
		if s.err != nil {
			report.problem("sender S%d (%s): %v", id, leaveNames[s.kind], s.err)
		}
	}
	for _, r := range receivers {
		report.Checked += r.checked
		report.Reordered += r.reordered
		report.Duplicated += r.duplicated
		report.Corrupted += r.broken
		for _, p := range r.problems {
			report.problem("%s", p)
		}
		var netErr net.Error
		if r.err != nil && !(errors.As(r.err, &netErr) && netErr.Timeout()) {
			what := r.err.Error()
			if errors.Is(r.err, io.EOF) {
				what = "the server closed it"
			}
			report.fail("receiver %d: its connection ended during the run (%s) after %d lines", r.index, what, r.checked)
		}
	}
	for id, s := range sent {
		want := uint64(1)<<s.complete - 1
		last := uint64(0)
		if s.unterminated {
			last = 1 << s.complete
		}
		missed, missedBy := uint64(0), 0 // the lines that some receiver never got, and how many
		for _, r := range receivers {
			var seen uint64
			if id < len(r.seen) {
				seen = r.seen[id]
			}
			if seen&last != 0 {
				report.LastRelayed++
			} else if last != 0 && s.err == nil {
				report.LastMissed++
			}
			if missing := want &^ seen; missing != 0 && s.err == nil {
				report.Lost += int64(bits.OnesCount64(missing))
				missed |= missing
				missedBy++
			}
		}
		if missed != 0 {
			report.problem("S%d (%s, %d lines): line(s) %s never reached %d of the %d receivers",
				id, leaveNames[s.kind], s.complete, bitList(missed), missedBy, len(receivers))
		}
	}

	// The server afterwards: as many descriptors as before, and asleep.
	if report.DescriptorsChecked {
		deadline := time.Now().Add(harness.Deadline)
		for {
			n, err := tester.OpenDescriptors(c.ServerPID)
			if err != nil {
				report.fail("server descriptors: %v", err)
				break
			}
			report.DescriptorsAfter = n
			if n.Sockets <= report.DescriptorsBefore.Sockets {
				break
			}
			if time.Now().After(deadline) {
				report.fail("server sockets: %d before the run, still %d %v after it: connections the server never closed",
					report.DescriptorsBefore.Sockets, n.Sockets, harness.Deadline)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if c.ServerPID > 0 && harness.CPUSupported {
		use, err := tester.CPUShare(c.IdleWindow, func() (time.Duration, error) { return tester.CPUTime(c.ServerPID) })
		if err != nil {
			report.fail("server CPU: %v", err)
		} else {
			report.IdleChecked = true
			report.IdleCPU = use
			if report.IdleCPU >= 0.02 {
				report.fail("server CPU: %.0f%% of a core over %v after the run, with nobody connected: it should sleep",
					100*report.IdleCPU, c.IdleWindow)
			}
		}
	}
	return report, nil
}

// bitList writes the set bits of b as "0-4 7".
func bitList(b uint64) string {
	var set []int
	for ; b != 0; b &= b - 1 {
		set = append(set, bits.TrailingZeros64(b))
	}
	return numberList(set)
}

// numberList writes increasing numbers as "0-4 7".
func numberList(numbers []int) string {
	var out []string
	for i := 0; i < len(numbers); {
		j := i
		for j+1 < len(numbers) && numbers[j+1] == numbers[j]+1 {
			j++
		}
		if j > i {
			out = append(out, fmt.Sprintf("%d-%d", numbers[i], numbers[j]))
		} else {
			out = append(out, strconv.Itoa(numbers[i]))
		}
		i = j + 1
	}
	return strings.Join(out, " ")
}

// soakSync sends sync lines from a connection of its own until every receiver has one: then
// the server relays to all of them, and no sender's line can reach a receiver it has not
// registered yet.
func soakSync(addr string, receivers []*soakReceiver) error {
	conn, err := net.DialTimeout("tcp", addr, harness.Deadline)
	if err != nil {
		return fmt.Errorf("sync connection: %w", err)
	}
	defer conn.Close()
	go io.Copy(io.Discard, conn) // ends when conn is closed
	deadline := time.Now().Add(harness.Deadline)
	for {
		synced := 0
		for _, r := range receivers {
			if r.synced.Load() {
				synced++
			}
		}
		if synced == len(receivers) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d receivers heard a line from the server within %v", synced, len(receivers), harness.Deadline)
		}
		conn.SetWriteDeadline(time.Now().Add(harness.Deadline))
		if _, err := io.WriteString(conn, soakSyncLine+"\n"); err != nil {
			return fmt.Errorf("sync connection: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// soakSend is one sender connection: it connects, sends its lines and leaves as s.kind says,
// and records in s what it sent.
func soakSend(addr string, id int, s *soakSender, random *rand.Rand, maxLines int) {
	conn, err := net.DialTimeout("tcp", addr, harness.Deadline)
	if err != nil {
		s.err = err
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(harness.Deadline))
	terminator := "\n"
	if random.IntN(2) == 0 {
		terminator = "\r\n"
	}
	count := random.IntN(maxLines + 1)
	var text strings.Builder
	for seq := range count {
		text.WriteString(soakLine(id, seq, terminator))
	}
	switch s.kind {
	case leaveSilently:
		return
	case leaveGracefully:
		// In small pieces that cut lines anywhere, so the server has to put them together.
		data := text.String()
		for len(data) > 0 {
			n := min(1+random.IntN(200), len(data))
			if _, err := io.WriteString(conn, data[:n]); err != nil {
				s.err = err
				return
			}
			data = data[n:]
		}
		s.complete = count
		conn.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, conn); err != nil {
			s.err = fmt.Errorf("after it shut its sending half, the server did not close: %w", err)
		}
	case leaveAtOnce:
		if _, err := io.WriteString(conn, text.String()); err != nil {
			s.err = err
			return
		}
		s.complete = count
	case leaveUnterminated:
		text.WriteString(soakText(id, count))
		if _, err := io.WriteString(conn, text.String()); err != nil {
			s.err = err
			return
		}
		s.complete, s.unterminated = count, true
		if random.IntN(2) == 0 {
			// Half of them shut their sending half and wait for the server to close.
			conn.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, conn)
		}
	}
}

// SoakServerLog sums up what a workshop server logged about connections during a soak that
// started it: every connection must have been logged as disconnected again, and a client the
// server dropped for a reason (none should be, in a soak) is named.
func SoakServerLog(p *harness.Process) (summary string, ok bool) {
	connected, disconnected := 0, 0
	reasons := map[string]int{}
	for _, line := range p.Lines() {
		switch {
		case line == "Server: client connected":
			connected++
		case line == "Server: client disconnected":
			disconnected++
		case strings.HasPrefix(line, "Server: client disconnected ("):
			disconnected++
			reasons[strings.TrimPrefix(line, "Server: client disconnected ")]++
		case strings.HasPrefix(line, "Server: refused") || strings.HasPrefix(line, "Server: cannot"):
			reasons[strings.TrimPrefix(line, "Server: ")]++
		}
	}
	summary = fmt.Sprintf("soak: the server logged %d connections and %d disconnections", connected, disconnected)
	ok = connected == disconnected && len(reasons) == 0
	for reason, n := range reasons {
		summary += fmt.Sprintf("\nsoak: the server logged %d× %q", n, reason)
	}
	if !ok {
		summary += "\nsoak: FAILED: every client should leave on its own, and be logged as it does"
	}
	return summary, ok
}
