package tester

// Floods: the one generator of numbered lines and the one writer that sends them, used by the
// checks, by the tests of our own stages and by the soak command alike.

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NumberedLine is line i of a flood, size bytes with its ending: "line 0000042 ---...", padded
// with dashes, so that a lost, cut or reordered line shows. A sender of 0 or more is named in
// front ("from 003 line 0000042 ---..."), for a relay whose lines do not say who sent them.
func NumberedLine(sender, i, size int, ending string) string {
	head := fmt.Sprintf("line %07d ", i)
	if sender >= 0 {
		head = fmt.Sprintf("from %03d ", sender) + head
	}
	return head + strings.Repeat("-", max(0, size-len(head)-len(ending))) + ending
}

// ParseNumbered reads a line that NumberedLine made, without its ending: its sender (-1 for
// none) and number. ok is false for anything else, a line cut or changed on the way included.
func ParseNumbered(text string) (sender, i int, ok bool) {
	sender, rest := -1, text
	if after, from := strings.CutPrefix(text, "from "); from {
		if sender, rest, ok = number(after); !ok {
			return -1, 0, false
		}
	}
	after, line := strings.CutPrefix(rest, "line ")
	if i, _, ok = number(after); !line || !ok {
		return -1, 0, false
	}
	return sender, i, text == NumberedLine(sender, i, len(text), "")
}

// number reads the number at the start of s, up to a space, and returns what follows the
// space. (No fmt.Sscanf: a check parses millions of these lines.)
func number(s string) (n int, rest string, ok bool) {
	digits, rest, ok := strings.Cut(s, " ")
	n, err := strconv.Atoi(digits)
	return n, rest, ok && err == nil && n >= 0
}

// FloodLine is the i-th line of the checks' floods: 100 bytes with its ending, "\r\n".
func FloodLine(i int) string { return NumberedLine(-1, i, 100, "\r\n") }

// Flood is one sender's part of a flood: lines First to First+Count-1 of Line, written on
// Conn in writes of about 64 KiB.
type Flood struct {
	Conn         net.Conn
	Line         func(i int) string
	First, Count int
	// OneLinePerWrite writes each line on its own, and Pause waits after each write: the
	// server then reads the flood in many small batches.
	OneLinePerWrite bool
	Pause           time.Duration
	// CutShort ends every write but the last that many bytes before the end of its last line,
	// which the next write ends: a relay that passes on its reads, not whole lines, then mixes
	// up the lines of senders that take turns (Turns).
	CutShort int
	Turns    *Turns
	Me       int // this sender's turn
	// Sent counts the lines written, over every sender of the flood. Given Read, the lines a
	// reader has counted, the senders together stay at most Ahead lines ahead of it: a reader
	// that reads as fast as it can may still be slower than the server, and must not be taken
	// for one that does not read. A reader that counts nothing for Patience ends the flood.
	Sent, Read *atomic.Int64
	Ahead      int64
	// Patience is how long a write or the reader may take (Deadline if 0).
	Patience time.Duration
}

// Send writes the flood from a goroutine of its own. The channel yields the first write
// error, or nil once everything is sent.
func (f Flood) Send() <-chan error {
	if f.Sent == nil {
		f.Sent = new(atomic.Int64)
	}
	if f.Turns == nil {
		f.Turns = NewTurns(1)
	}
	if f.Patience == 0 {
		f.Patience = Deadline
	}
	done := make(chan error, 1)
	go func() {
		defer f.Turns.pass(f.Me, true)
		done <- f.send()
	}()
	return done
}

func (f Flood) send() error {
	var batch []byte
	lines := 0
	last := f.First + f.Count - 1
	for i := f.First; i <= last; i++ {
		batch = append(batch, f.Line(i)...)
		lines++
		if len(batch) < 64<<10 && !f.OneLinePerWrite && i < last {
			continue
		}
		f.Turns.wait(f.Me)
		if err := f.waitReader(lines); err != nil {
			return err
		}
		n := len(batch)
		if i < last {
			n -= min(f.CutShort, n)
		}
		f.Conn.SetWriteDeadline(time.Now().Add(f.Patience))
		if _, err := f.Conn.Write(batch[:n]); err != nil {
			return err
		}
		f.Sent.Add(int64(lines))
		batch, lines = append(batch[:0], batch[n:]...), 0
		f.Turns.pass(f.Me, false)
		time.Sleep(f.Pause)
	}
	return nil
}

// waitReader waits until lines more are at most Ahead lines ahead of the reader. Patience
// counts from the reader's last progress: with several senders, one may wait its turn for as
// long as the others take.
func (f Flood) waitReader(lines int) error {
	if f.Read == nil {
		return nil
	}
	last, deadline := f.Read.Load(), time.Now().Add(f.Patience)
	for f.Sent.Load()+int64(lines)-f.Read.Load() > f.Ahead {
		if now := f.Read.Load(); now != last {
			last, deadline = now, time.Now().Add(f.Patience)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the reader got no line for %s", human(f.Patience))
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Floods sends every flood at once. The channel yields the error of the first sender, in
// their order, that failed, as soon as the senders before it are done; or nil once every one
// has sent everything.
func Floods(floods []Flood) <-chan error {
	sending := make([]<-chan error, len(floods))
	for k, f := range floods {
		sending[k] = f.Send()
	}
	done := make(chan error, 1)
	go func() {
		for _, errs := range sending {
			if err := <-errs; err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// Turns has the senders of a flood write one after the other, a write each in turn: a relay
// that passes on its reads then has another sender's write between each write's unfinished
// last line and its end.
type Turns struct {
	mu   sync.Mutex
	cond *sync.Cond
	next int    // whose turn it is
	done []bool // senders that have sent everything, or given up
}

// NewTurns has senders take turns.
func NewTurns(senders int) *Turns {
	t := &Turns{done: make([]bool, senders)}
	t.cond = sync.NewCond(&t.mu)
	return t
}

// wait waits for sender s's turn.
func (t *Turns) wait(s int) {
	t.mu.Lock()
	for t.next != s {
		t.cond.Wait()
	}
	t.mu.Unlock()
}

// pass gives the turn to the next sender still sending; finished says s is done.
func (t *Turns) pass(s int, finished bool) {
	t.mu.Lock()
	t.done[s] = t.done[s] || finished
	if t.next == s {
		for i := 1; i <= len(t.done); i++ {
			if k := (s + i) % len(t.done); !t.done[k] {
				t.next = k
				break
			}
		}
	}
	t.cond.Broadcast()
	t.mu.Unlock()
}
