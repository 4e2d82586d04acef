package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// console is the screen and keyboard. On a pipe it only cuts the input into lines. In a
// terminal in raw mode the kernel no longer echoes or edits what is typed, so console does
// both itself: it is the only one that knows the line being typed, and so the only one that
// can redraw it under a message that arrives halfway through.
type console struct {
	out      io.Writer
	terminal bool   // stdin is a terminal in raw mode
	line     []byte // typed since the last Enter, not sent yet
	escape   int    // where we are in an escape sequence such as an arrow key (see feed)
}

// Bytes a terminal in raw mode sends for the keys console handles.
const (
	ctrlC     = 0x03
	ctrlD     = 0x04
	backspace = 0x08
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

// prompt shows "> " followed by the line being typed.
func (c *console) prompt() {
	fmt.Fprintf(c.out, "> %s", c.line)
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

	var echo bytes.Buffer // everything to draw for this input, written at once
	redraw := func() { fmt.Fprintf(&echo, "\r\x1b[K> %s", c.line) }
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
				lines = append(lines, string(c.line))
				c.line = c.line[:0]
				echo.WriteString("\n> ")
			}
		case b == del || b == backspace:
			_, size := utf8.DecodeLastRune(c.line) // one character may be several bytes
			c.line = c.line[:len(c.line)-size]
			redraw()
		case b == ctrlU:
			c.line = c.line[:0]
			redraw()
		case b < 0x20: // other control keys
		default: // a printable byte, or part of a UTF-8 character
			c.line = append(c.line, b)
			echo.WriteByte(b)
		}
	}
	c.out.Write(echo.Bytes())
	return lines, false
}

// show prints a message from the server without cutting into the line being typed.
func (c *console) show(message string) {
	if !c.terminal {
		fmt.Fprintf(c.out, "Message: %s\n", message)
		return
	}
	// Erase the line being typed, print the message in its place, and draw the typed line
	// again below it: messages scroll up, and the typing stays in one piece at the bottom.
	// Control characters in a message (someone else's bytes) could move the cursor or
	// recolour the terminal, so they are shown as '?'.
	fmt.Fprintf(c.out, "\r\x1b[KMessage: %s\n> %s", strings.Map(printable, message), c.line)
}

func printable(r rune) rune {
	if r < 0x20 || r == del {
		return '?'
	}
	return r
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
