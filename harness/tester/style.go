//go:build linux || darwin

package tester

import (
	"fmt"
	"strings"
	"time"
)

// House style. Up to stage 5 the lesson is who gets each line and that it arrives whole; how a
// server dresses the room is its own affair. Most chat servers greet a newcomer ("You are
// 127.0.0.1:57296"), say who came and went, and put the speaker's name or address in front of
// each line they relay ("127.0.0.1:57298: Hello"). So the checks of those stages look for the
// lines their clients sent, whole and in order, in what the server sends: a line that carries
// none of what any client sent is the server's own and is passed over; a line that ends with a
// line a client sent, after a prefix that holds nothing any client sent, relays it. What still
// fails is what the lessons rule out: a line cut or run into another (its prefix or its end
// then holds bytes a client sent), a line lost or out of order, a line sent back to its sender.
// From stage 6 on, our protocol is the lesson, and the lines must be exactly ours.

// styleWindow is how many bytes of a line a client sent make that line recognisable inside
// another: a prefix (or a line of the server's own) that holds that many bytes of one is a
// relay gone wrong, not house style. Shorter lines a client sent are looked for whole.
const styleWindow = 16

// maxStyleLines bounds how many lines of its own a server may send before the line a check
// waits for: a greeting and fifty arrivals fit.
const maxStyleLines = 1000

// houseStyle is what the checks of one run saw of a server's house style.
type houseStyle struct {
	own    string // the first line the server sent of its own
	prefix string // the first text seen in front of a relayed line
	line   string // the relayed line it was seen in
}

// Relayed is a line a client received, as the house-style reader sees it.
type Relayed struct {
	Line    string // as received, with its ending
	Text    string // without its ending
	Message string // the line a client sent that it relays whole, or "" if none
	Prefix  string // what the server put in front of Message
}

// styled reports whether the run looks past house style: up to stage 5.
func (r *Run) styled() bool { return r.stage <= 5 && r.test == nil }

// sentLine records a line a client sent, for recognising it in what the server sends.
func (r *Run) sentLine(line string) {
	if line == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sentLines == nil {
		r.sentLines, r.sentWindows = map[string]bool{}, map[string]bool{}
	}
	if r.sentLines[line] {
		return
	}
	r.sentLines[line] = true
	for i := 0; i+styleWindow <= len(line); i++ {
		r.sentWindows[line[i:i+styleWindow]] = true
	}
}

// holdsSent reports whether text holds a line a client sent, or enough of one to tell.
func (r *Run) holdsSent(text string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := 0; i+styleWindow <= len(text); i++ {
		if r.sentWindows[text[i:i+styleWindow]] {
			return true
		}
	}
	// A short line is looked for only at the end, where a relay puts it: "Hello" may well
	// be a word of a greeting.
	for line := range r.sentLines {
		if len(line) < styleWindow && strings.HasSuffix(text, line) {
			return true
		}
	}
	return false
}

// relays finds the line a client sent that text relays whole, after a prefix of the
// server's that holds nothing a client sent; the longest, if several would do.
func (r *Run) relays(text string) (message, prefix string) {
	r.mu.Lock()
	var candidates []string
	for line := range r.sentLines {
		if strings.HasSuffix(text, line) {
			candidates = append(candidates, line)
		}
	}
	r.mu.Unlock()
	for _, line := range candidates {
		if p := text[:len(text)-len(line)]; len(line) > len(message) && !r.holdsSent(p) {
			message, prefix = line, p
		}
	}
	return message, prefix
}

// notePrefix records text put in front of a relayed line, once.
func (r *Run) notePrefix(prefix, line string) {
	if prefix == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.style.prefix == "" {
		r.style.prefix, r.style.line = prefix, line
	}
}

// noteOwn records a line the server sent of its own, once.
func (r *Run) noteOwn(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.style.own == "" {
		r.style.own = line
	}
}

// styleSeen says what the run saw of the server's house style, or "".
func (r *Run) styleSeen() string {
	s := r.style
	var seen []string
	if s.own != "" {
		seen = append(seen, fmt.Sprintf("sends lines of its own (%s)", quote(s.own)))
	}
	if s.prefix != "" {
		seen = append(seen, fmt.Sprintf("puts %s in front of the lines it relays (%s)", quote(s.prefix), quote(s.line)))
	}
	if len(seen) == 0 {
		return ""
	}
	return "your server " + strings.Join(seen, " and ") + ". That is not a lesson of " +
		"stages 1 to 5: the checks look past it for the lines their clients sent."
}

// isRelay tells a relayed line from one of the server's own: with house style looked past,
// the line's text holds something a client sent.
func (r *Run) isRelay(text string) bool {
	return !r.styled() || r.holdsSent(text)
}

// readRelayed reads the next line that relays something, within d, passing over the server's
// own lines (up to stage 5). Message is set when the line relays a line a client sent whole.
func (c *Client) readRelayed(d time.Duration, show bool) (Relayed, error) {
	deadline := time.Now().Add(d)
	var own []string // passed over; many (fifty arrivals) are shown in one line
	flush := func() {
		switch {
		case len(own) > 3:
			c.run.say("[%s] received %s and %d more lines of your server's own", c.Name, quote(own[0]), len(own)-1)
		case show:
			for _, line := range own {
				c.run.say("[%s] received %s", c.Name, quote(line))
			}
		}
	}
	for range maxStyleLines {
		wait := max(time.Until(deadline), time.Millisecond)
		c.Conn.SetReadDeadline(time.Now().Add(wait))
		line, err := c.Reader.ReadString('\n')
		got := Relayed{Line: line, Text: trimEnding(line)}
		if err != nil {
			flush()
			c.sayRead(line, err, d)
			return got, err
		}
		if c.run.styled() {
			got.Message, got.Prefix = c.run.relays(got.Text)
		} else {
			got.Message = got.Text
		}
		if got.Message == "" && !c.run.isRelay(got.Text) {
			c.run.noteOwn(got.Text)
			own = append(own, line)
			continue
		}
		flush()
		c.run.notePrefix(got.Prefix, got.Text)
		if show {
			c.run.say("[%s] received %s", c.Name, quote(line))
		}
		return got, nil
	}
	flush()
	return Relayed{}, fmt.Errorf("only lines of the server's own")
}

// trimEnding is line without its "\n" or "\r\n".
func trimEnding(line string) string {
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
}

// unstyled is text without the prefix seen in front of relayed lines, if it starts with it,
// for saying where a line went wrong.
func (r *Run) unstyled(text string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.TrimPrefix(text, r.style.prefix)
}
