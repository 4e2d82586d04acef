//go:build linux || darwin

package tester

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The flood check: readers that read like slow clients, a client that floods for a while, and
// then another that speaks, who must be heard at once. What a reader has to get through
// before the line is what the server read of the flood less what the reader took meanwhile:
// from a server that reads the flood at S bytes a second, the line comes
// (S - readerRate) * floodLead / readerRate after it was sent. The pace is slow enough that a
// server without flood control buries the line as soon as it relays more than 512 KB/s (a
// Python relay that prints every line to a terminal relays 1.6 MB/s), and fast enough that
// a flood-control burst of a few hundred KB (ours is 256 KiB) is read before the line comes.
const (
	floodReaders = 3
	readerRate   = 256 << 10 // bytes a second that each reader takes: far more than anyone reads
	floodLead    = 2 * time.Second
	// floodHeard is how soon after it is sent every reader must have the line. A server with
	// flood control delivers it within milliseconds.
	floodHeard = 2 * time.Second
)

// floodHint is the lesson of a flood that buried the others.
const floodHint = "one client sending as fast as it can buried everyone else: every line it " +
	"sends is queued for every reader, and readers slower than the flood fall behind until " +
	"they are dropped, or wait seconds for anyone else's line. Give each client a budget for " +
	"what it sends (a token bucket: a burst, then a rate far below what a reader takes, such " +
	"as 64 KiB/s) and read a client over it no faster than that, or drop it"

// hearing is what one reader saw of the flood.
type hearing struct {
	at    time.Time // when the line came, or zero
	err   error     // why it stopped reading, if the line did not come
	other string    // the last line it got that was neither the flood nor the line: a goodbye
	read  int64     // bytes read
}

func checkFlood(r *Run) {
	readers := r.Clients(floodReaders)
	speaker, flooder := r.Client(), r.Client()
	speaker.Drain()
	told := heedFlooder(flooder)
	message := fmt.Sprintf("%s: can you hear me over %s?", speaker.Name, flooder.Name)
	r.Say("%s to %s read at 256 KB/s each, as slow clients do", readers[0].Name, readers[len(readers)-1].Name)
	heard := make([]hearing, len(readers))
	var reading sync.WaitGroup
	for i, c := range readers {
		reading.Add(1)
		go func() {
			defer reading.Done()
			heard[i] = readSlowly(c, message)
		}()
	}
	r.Say("%s floods, as fast as your server takes it, for %s", flooder.Name, human(floodLead))
	r.HideOutput()
	stopFlood := startFlood(flooder)
	time.Sleep(floodLead) // the flood's length, not a wait for something to happen

	r.say("[%s] sends %s", speaker.Name, quote(message+"\n"))
	sent := time.Now()
	for _, c := range readers {
		c.Conn.SetReadDeadline(sent.Add(floodHeard))
	}
	speaker.Conn.SetWriteDeadline(time.Now().Add(Deadline))
	_, sendErr := io.WriteString(speaker.Conn, message+"\n")
	reading.Wait()
	dropped := stopFlood()
	// The server's lines stay hidden: a server that logs from a backlog is still printing
	// the flood.

	var late, gone []string
	for i, c := range readers {
		h := heard[i]
		switch {
		case !h.at.IsZero():
			r.say("[%s] received it %s after it was sent, having read %s", c.Name, human(h.at.Sub(sent).Round(time.Millisecond)), megabytes(h.read))
			if h.at.Sub(sent) > floodHeard {
				late = append(late, c.Name)
			}
		case isTimeout(h.err):
			r.say("[%s] had not received it %s after it was sent, having read %s", c.Name, human(floodHeard), megabytes(h.read))
			late = append(late, c.Name)
		default:
			why := "the connection was closed by your server"
			if !errors.Is(h.err, io.EOF) {
				why = reasonOf(h.err)
			}
			r.say("[%s] %s, after %s", c.Name, why, megabytes(h.read))
			if h.other != "" {
				r.say("[%s] its last line was %s", c.Name, quote(h.other))
			}
			gone = append(gone, c.Name)
		}
	}
	if sendErr != nil {
		r.say("[%s] cannot send: %v", speaker.Name, reasonOf(sendErr))
		r.Fail(fmt.Sprintf("%s to be able to send while %s floods", speaker.Name, flooder.Name), floodHint)
	}
	if len(gone) > 0 {
		r.Fail(fmt.Sprintf("%s to stay connected while %s floods", strings.Join(gone, ", "), flooder.Name), floodHint)
	}
	if len(late) > 0 {
		r.Fail(fmt.Sprintf("%s to receive %s's line within %s while %s floods",
			strings.Join(late, ", "), speaker.Name, human(floodHeard), flooder.Name), floodHint)
	}
	slowest := time.Duration(0)
	for _, h := range heard {
		slowest = max(slowest, h.at.Sub(sent))
	}
	how := "said nothing to it (ours tell a flooder once that it is slowed down)"
	switch {
	case dropped:
		how = "dropped it"
		r.Note("flooder", "dropped")
	case told() != "":
		how = fmt.Sprintf("told it %q", strings.TrimRight(told(), "\r\n"))
		r.Note("flooder", "told")
	}
	within := human(max(slowest.Round(time.Millisecond), time.Millisecond))
	r.Observe("Every reader heard %s within %s through %s's flood; your server %s.",
		speaker.Name, within, flooder.Name, how)
}

// readSlowly reads c's lines at about readerRate until one is message, or the connection ends,
// or a read deadline passes.
func readSlowly(c *Client, message string) hearing {
	var h hearing
	start := time.Now()
	for {
		line, err := c.Reader.ReadString('\n')
		h.read += int64(len(line))
		if err != nil {
			h.err = err
			return h
		}
		if isLine(line, message) {
			h.at = time.Now()
			return h
		}
		if !strings.HasPrefix(line, "line ") {
			h.other = line
		}
		// Keep to the pace, in sleeps of a few milliseconds rather than one per line.
		if ahead := time.Until(start.Add(time.Duration(float64(h.read) / readerRate * float64(time.Second)))); ahead > 5*time.Millisecond {
			time.Sleep(ahead)
		}
	}
}

// startFlood has c send flood lines as fast as the server takes them, from a goroutine of
// its own, until the returned function is called; that function reports whether the server
// dropped c meanwhile.
func startFlood(c *Client) (stop func() (dropped bool)) {
	var batch strings.Builder
	for i := 0; batch.Len() < 64<<10; i++ {
		batch.WriteString(FloodLine(i))
	}
	var failed atomic.Bool
	done := make(chan struct{})
	c.Conn.SetWriteDeadline(time.Time{})
	go func() {
		defer close(done)
		for {
			if _, err := io.WriteString(c.Conn, batch.String()); err != nil {
				failed.Store(!isTimeout(err))
				return
			}
		}
	}()
	return func() bool {
		c.Conn.SetWriteDeadline(time.Now()) // ends a write the server is not taking
		<-done
		if failed.Load() {
			c.run.say("[%s] cannot send any more: your server dropped it", c.Name)
		}
		return failed.Load()
	}
}

// heedFlooder reads what the flooder receives, in the background, and returns what says the
// last line it got that was not a flood line nor another client's (the server telling it to
// slow down, perhaps).
func heedFlooder(c *Client) (told func() string) {
	var mu sync.Mutex
	var last string
	c.drained = make(chan struct{})
	go func() {
		defer close(c.drained)
		for {
			line, err := c.Reader.ReadString('\n')
			if err != nil {
				return
			}
			if !strings.HasPrefix(line, "line ") && !strings.HasPrefix(line, "client-") {
				mu.Lock()
				last = line
				mu.Unlock()
			}
		}
	}()
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// megabytes writes a number of bytes as a person reads it: "1.6 MB", "300 KB".
func megabytes(n int64) string {
	if n < 1_000_000 {
		return fmt.Sprintf("%d KB", (n+500)/1000)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// PausedLines is how many lines the paused-output check relays while the server's output is
// not read: 1 MB of messages, which a server that prints each one logs as more than 1 MB,
// many times what a pipe or terminal (64 KiB or so) and the tester's reads hold.
const PausedLines = 10_000

// pausedHint is the lesson of a relay that stopped with the server's output.
const pausedHint = "your server stopped relaying while its standard output was not being " +
	"read (a terminal paused with Ctrl-S, a pipe nobody reads): a print there blocks once " +
	"the terminal or pipe is full, and a loop that prints each message itself stops with it. " +
	"Never let the loop wait for its own output: hand the log to a thread (or goroutine, or " +
	"task) of its own through a bounded backlog, dropping and counting lines when it is full"

func checkPausedOutput(r *Run) {
	healthy := r.Client()
	senders := r.Clients(r.floodSenders(PausedLines))
	r.HideOutput() // what it prints now is not read until later, and then it is a flood
	r.PauseOutput()
	floodPast(r, senders, healthy, PausedLines, pausedHint)
	r.ResumeOutput()
	newcomer := r.Client()
	hello := "hello, I am " + newcomer.Name
	newcomer.Send(hello + "\n")
	if skipTo(healthy, hello, 0) == "" {
		r.Fail(fmt.Sprintf("%s to receive %q", healthy.Name, hello),
			"once its output is read again, your server must go on relaying and accepting: "+pausedHint)
	}
	// The log comes in order: once the newcomer's line is printed, so is whatever of the flood
	// the server kept. A server that does not print messages has nothing to wait for.
	_, logged := r.WaitLog(2*time.Second, endsWith(hello))
	r.ShowOutput()
	printed := 0
	for _, line := range r.output.All() {
		if strings.Contains(line, "line 00") && strings.HasSuffix(line, strings.Repeat("-", 85)) {
			printed++
		}
	}
	switch {
	case printed >= PausedLines:
		r.Note("log", "kept")
		r.Observe("Your server printed all %d messages once its output was read again.", PausedLines)
	case printed > 0 || logged:
		r.Note("log", "dropped")
		r.Observe("Your server printed %d of the %d messages once its output was read again: "+
			"it let the rest go (ours keep up to 1 MiB of log, and count what they drop).", printed, PausedLines)
	default:
		r.Note("log", "none")
		r.Observe("Your server printed none of the messages, so its output could not hold it " +
			"up (ours print each one, from a goroutine of their own).")
	}
}

// ShutdownLines is how many lines the shutdown check queues for a client that does not read:
// 4 MB, about 1 MB more than the kernel holds for it (see CatchUpLines), so that about 1 MB
// waits in the server itself when the signal comes.
const ShutdownLines = CatchUpLines

// shutdownWait is how long a server has, from SIGTERM, to deliver what was queued and end.
const shutdownWait = 5 * time.Second

// shutdownHint is the lesson of a stop that did not deliver what was queued.
const shutdownHint = "not every line queued for a client before SIGTERM reached it: a server " +
	"that exits at once (or dies of the signal) throws its queues away, and one that stops " +
	"its loop sends nothing more. On SIGTERM or SIGINT, stop accepting and reading, give the " +
	"output already queued a moment to go out (ours give it 1 s), then close every " +
	"connection and exit"

func checkShutdown(r *Run) {
	late, witness := r.SlowClient(), r.Client()
	senders := r.Clients(r.floodSenders(ShutdownLines))
	r.Say("%s does not read for now; %s reads everything", late.Name, witness.Name)
	r.HideOutput()
	floodPast(r, senders, witness, ShutdownLines, "")
	// Everything has been read by the server, since the witness got it: what late has not
	// read waits for it, in the kernel and in the server's queue.
	signalled := r.terminate()
	r.Say("%s reads now", late.Name)
	// It reads everything first, as fast as it can, and looks at the lines after: a server
	// gives its queues a moment, which a reader that checks each line as it comes (slowly,
	// under the race detector) could use up.
	var stream bytes.Buffer
	late.Conn.SetReadDeadline(signalled.Add(shutdownWait))
	_, end := io.Copy(&stream, late.Reader)
	if end == nil {
		end = io.EOF
	}
	late.Reader = bufio.NewReader(io.MultiReader(&stream, failing{end}))
	receiveFlood(late, ShutdownLines, new(atomic.Int64), shutdownWait, shutdownHint, shutdownHint)
	// Anything after the lines (a goodbye, say) is passed over: the stream must end, in order
	// or with a reset, which loses nothing now.
	if _, err := io.Copy(io.Discard, late.Reader); isTimeout(err) {
		r.say("[%s] still connected %s after SIGTERM", late.Name, human(shutdownWait))
		r.Fail(fmt.Sprintf("your server to close %s's connection once its lines were sent", late.Name),
			"after SIGTERM, once a client's queued output has gone out, close its connection and exit")
	}
	r.say("[%s] the connection was closed by your server", late.Name)
	if !r.ended(signalled.Add(shutdownWait)) {
		r.Say("your server was still running %s after SIGTERM", human(shutdownWait))
		r.Fail(fmt.Sprintf("your server to end within %s of SIGTERM", human(shutdownWait)),
			"after SIGTERM, deliver what is queued, close every connection and exit: a stop "+
				"must not hang (cut off a client that does not take its output within a second or so)")
	}
	status := r.program.Exited()
	r.Say("your server ended %s after SIGTERM (%s)", human(time.Since(signalled).Round(10*time.Millisecond)), status)
	r.Note("status", status)
	if status != "exit status 0" {
		r.Observe("Your server delivered what was queued, then ended with %q; ours exit with "+
			"status 0 after a stop they were asked for (a go run or shell around a server may "+
			"report its own status).", status)
	}
}

// failing is a reader that fails with err: how a stream read ahead ended.
type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }

// terminate sends SIGTERM to the server's process group, as the tester stops a server, without
// waiting for it to end; it returns when.
func (r *Run) terminate() time.Time {
	r.setStopping(true)
	r.Say("SIGTERM to your server's process group")
	signalGroup(r.program.Group(), syscall.SIGTERM)
	return time.Now()
}

// ended waits until the server's whole process group has ended, or deadline, and reports
// whether it has.
func (r *Run) ended(deadline time.Time) bool {
	select {
	case <-r.program.ended():
	case <-time.After(time.Until(deadline)):
		return false
	}
	// Its process has ended; what it started (the server under a go run or a shell) may not
	// have, and no event says when a group is empty.
	for r.program.GroupAlive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
