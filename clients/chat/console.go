package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// console is the screen and keyboard. On a pipe it only cuts the input into lines. In a
// terminal in raw mode the kernel no longer echoes or edits what is typed, so console does
// both itself: it is the only one that knows the line being typed, and so the only one that
// can redraw it under a message that arrives halfway through.
type console struct {
	out      io.Writer
	terminal bool   // stdin is a terminal in raw mode
	width    int    // the terminal's width in columns (see setWidth)
	line     []byte // typed since the last Enter, not sent yet
	escape   int    // where we are in an escape sequence such as an arrow key (see feed)
	drawn    string // the prompt and line as they stand on the screen now (see text)
}

// Bytes a terminal in raw mode sends for the keys console handles.
const (
	ctrlC     = 0x03
	ctrlD     = 0x04
	backspace = 0x08
	tab       = 0x09
	ctrlU     = 0x15
	esc       = 0x1b
	del       = 0x7f // what the Backspace key sends on most terminals
)

// Steps of an escape sequence: ESC, then '[' or 'O', then parameters up to a final letter.
const (
	notInEscape = iota
	afterEsc
	inSequence
)

// defaultWidth is assumed when the terminal does not say how wide it is.
const defaultWidth = 80

// setWidth records how many columns the terminal has, as it says at the start.
func (c *console) setWidth(columns int) {
	if columns <= 0 {
		columns = defaultWidth
	}
	c.width = columns
}

// resize follows the terminal to its new width and draws the line again. Terminals today
// (tmux, iTerm2, GNOME's, Windows Terminal) rewrap what they show to the new width, so the
// line already stands where a line of the new width would, and every erase from now on must
// count its rows at the new width. (xterm does not rewrap; there a resize can leave a stale
// row behind, or erase one row too many.)
func (c *console) resize(columns int) {
	c.setWidth(columns)
	if c.terminal {
		var screen bytes.Buffer
		c.erase(&screen)
		c.refresh(&screen)
		c.out.Write(screen.Bytes())
	}
}

// prompt draws "> " and the line typed so far.
func (c *console) prompt() {
	var screen bytes.Buffer
	c.refresh(&screen)
	c.out.Write(screen.Bytes())
}

// feed takes what was typed or piped in and returns the lines that are complete, and whether
// you asked to leave (Ctrl-C, or Ctrl-D on an empty line).
func (c *console) feed(input []byte) (lines []string, quit bool) {
	if !c.terminal {
		c.line = append(c.line, input...)
		for {
			end := bytes.IndexByte(c.line, '\n')
			if end < 0 {
				return lines, false
			}
			lines = append(lines, trimLineEnd(string(c.line[:end+1])))
			c.line = c.line[end+1:]
		}
	}

	var screen bytes.Buffer // everything to draw for this input, written at once
	for _, b := range input {
		switch {
		case c.escape == afterEsc && (b == '[' || b == 'O'):
			c.escape = inSequence
		case c.escape == afterEsc, c.escape == inSequence && b >= 0x40 && b <= 0x7e:
			c.escape = notInEscape // an arrow or function key: not handled, and not typed
		case c.escape == inSequence:
		case b == esc:
			c.escape = afterEsc
		case b == ctrlC:
			return lines, true
		case b == ctrlD && len(c.line) == 0:
			return lines, true
		case b == '\r' || b == '\n':
			if len(c.line) > 0 { // an empty line is not a message
				// The line stays on the screen as it was typed, and a new prompt starts below.
				c.refresh(&screen)
				screen.WriteString("\n")
				c.drawn = ""
				lines = append(lines, string(c.line))
				c.line = c.line[:0]
			}
		case b == del || b == backspace:
			_, size := utf8.DecodeLastRune(c.line) // one character may be several bytes
			c.line = c.line[:len(c.line)-size]
		case b == ctrlU:
			c.line = c.line[:0]
		case b == tab: // typed, or part of a paste: a tab is sent as it is
			c.line = append(c.line, b)
		case b < 0x20: // other control keys
		default: // a printable byte, or part of a UTF-8 character
			c.line = append(c.line, b)
		}
	}
	c.refresh(&screen)
	c.out.Write(screen.Bytes())
	return lines, false
}

// show prints a message from the server without cutting into the line being typed.
func (c *console) show(message string) {
	if !c.terminal {
		fmt.Fprintf(c.out, "Message: %s\n", visible(message))
		return
	}
	// Erase the line being typed, print the message in its place, and draw the typed line
	// again below it: messages scroll up, and the typing stays in one piece at the bottom.
	var screen bytes.Buffer
	c.erase(&screen)
	fmt.Fprintf(&screen, "Message: %s\n", visible(message))
	c.refresh(&screen)
	c.out.Write(screen.Bytes())
}

// text is the prompt and the line as they are drawn: a tab as spaces up to the next multiple
// of 8 columns, and bytes that visible would escape, escaped.
func (c *console) text() string {
	var text strings.Builder
	text.WriteString("> ")
	column := 2
	for _, r := range visible(string(c.line)) {
		if r == '\t' {
			spaces := 8 - column%8
			text.WriteString(strings.Repeat(" ", spaces))
			column += spaces
			continue
		}
		text.WriteRune(r)
		column += columns(r)
	}
	return text.String()
}

// refresh brings the screen up to date with the line. When the line only grew, as it does
// while you type, it writes just what is new and the terminal wraps it; otherwise it erases
// what is drawn and draws it all again.
func (c *console) refresh(screen *bytes.Buffer) {
	text := c.text()
	if strings.HasPrefix(text, c.drawn) {
		screen.WriteString(text[len(c.drawn):])
	} else {
		c.erase(screen)
		screen.WriteString(text)
	}
	c.drawn = text
}

// erase removes the prompt and line from the screen and leaves the cursor where the prompt
// began. A line wider than the terminal takes several rows, and clearing only the row the
// cursor is on would leave the others behind, a stale copy at each redraw. So go back to the
// left margin, up to the prompt's row, and clear from there to the end of the screen (the
// line is always the last thing on it).
func (c *console) erase(screen *bytes.Buffer) {
	screen.WriteString("\r")
	if up := cursorRow(c.drawn, c.width); up > 0 {
		fmt.Fprintf(screen, "\x1b[%dA", up)
	}
	screen.WriteString("\x1b[J")
	c.drawn = ""
}

// cursorRow tells on which row, counted from 0 where text starts at the left margin, the
// cursor stands after text is written to a terminal width columns wide. A terminal wraps only
// when a character no longer fits, not as soon as the row is full: after the last column it
// waits for the next character. So text that exactly fills a row leaves the cursor on that
// row, and a wide character that does not fit moves whole to the next one.
func cursorRow(text string, width int) int {
	row, column := 0, 0
	for _, r := range text {
		if column+columns(r) > width {
			row++
			column = 0
		}
		column += columns(r)
	}
	return row
}

// columns is how many columns a terminal gives a character: none for a combining accent, two
// for the wide characters of Chinese, Japanese and Korean and for emoji (the ranges of Markus
// Kuhn's wcwidth), one for the rest.
func columns(r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me):
		return 0
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0xa4cf && r != 0x303f,
		r >= 0xac00 && r <= 0xd7a3, r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f,
		r >= 0xff00 && r <= 0xff60, r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300 && r <= 0x1f64f,
		r >= 0x1f900 && r <= 0x1f9ff, r >= 0x20000 && r <= 0x3fffd:
		return 2
	}
	return 1
}

// visible returns someone else's text safe to print, by the rule the server's log follows
// (printMessage in stage 5's log.go; harness/clients_test.go checks that the two agree): tab
// and printable characters (unicode.IsPrint: letters of every script, marks, digits,
// punctuation, symbols, emoji, the ASCII space) stay as they are; a control byte or a byte that
// is not UTF-8 is shown as \xNN, any other character as \uNNNN. Printed as they came, control
// bytes and C1 controls (U+009B works as ESC [ on some terminals) could clear our screen, move
// the cursor into the line being typed or recolour the terminal; a right-to-left override
// (U+202E) or isolate (U+2067) would show the rest of the line reversed, so that "evil
// \u202egnp.exe" reads "evil exe.png"; and zero-width and other format characters (U+200B,
// U+2060, U+FEFF) would hide inside words and names.
func visible(message string) string {
	var shown strings.Builder
	for len(message) > 0 {
		r, size := utf8.DecodeRuneInString(message)
		switch {
		case r == '\t' || unicode.IsPrint(r) && !(r == utf8.RuneError && size == 1):
			shown.WriteString(message[:size])
		case size == 1: // a control byte, or a byte that is not UTF-8
			fmt.Fprintf(&shown, `\x%02x`, message[0])
		case r <= 0xffff:
			fmt.Fprintf(&shown, `\u%04x`, r)
		default:
			fmt.Fprintf(&shown, `\U%08x`, r)
		}
		message = message[size:]
	}
	return shown.String()
}

// rest returns what was piped in after the last newline, as a last line to send. In a
// terminal, a line not finished with Enter is not sent.
func (c *console) rest() []string {
	if c.terminal || len(c.line) == 0 {
		return nil
	}
	return []string{trimLineEnd(string(c.line))}
}

// end moves a terminal off the prompt line, so that the program's last words start a line.
func (c *console) end() {
	if c.terminal {
		fmt.Fprint(c.out, "\n")
	}
}
