package harness

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// TerminalScreen is a small terminal emulator: it plays a program's output the way an xterm
// would and shows the rows it ends up with. It knows what a line-based program uses:
//
//   - "\r" (to the left margin), "\n" (down one row, same column: the terminal itself turns a
//     program's "\n" into "\r\n"), backspace, and tab (to the next multiple of 8, at most the
//     last column);
//   - ESC [ n A, B, C, D (cursor up, down, right, left), ESC [ n G (to column n), ESC [ r;c H
//     (to row r, column c), ESC [ K and ESC [ J (erase to the end of the row or screen; 1 is
//     to the cursor, 2 all of it);
//   - wrapping at the right margin, with the rule that makes redrawing hard: a character
//     written in the last column leaves the cursor there, and the wrap happens only when the
//     next printable character comes (a "\r", "\n" or cursor move in between cancels it);
//   - scrolling: the screen is the last height rows, and the cursor cannot go above it;
//   - a resize rewraps the rows that were wrapped, and moves the cursor with its text, as
//     tmux, iTerm2 and GNOME's terminal do (xterm does not).
//
// Other escape sequences (colours, say) are dropped, and every character takes one column.
type TerminalScreen struct {
	width, height int
	rows          [][]rune // every row, including those scrolled off the top
	wrapped       []bool   // the row's text goes on in the next row: it was wrapped, not ended
	top           int      // the index in rows of the screen's first row
	row, column   int      // the cursor; row is an index in rows
	pendingWrap   bool     // the cursor is in the last column, and the next character wraps
}

// NewTerminalScreen returns an empty screen of width columns and height rows.
func NewTerminalScreen(width, height int) *TerminalScreen {
	return &TerminalScreen{width: width, height: height}
}

// Write plays output, which must not end in the middle of an escape sequence.
func (s *TerminalScreen) Write(output string) {
	for i := 0; i < len(output); {
		r, size := utf8.DecodeRuneInString(output[i:])
		i += size
		switch {
		case r == '\r':
			s.column, s.pendingWrap = 0, false
		case r == '\n' || r == '\v' || r == '\f':
			s.lineFeed()
		case r == '\b':
			s.column, s.pendingWrap = max(s.column-1, 0), false
		case r == '\t':
			s.column, s.pendingWrap = min((s.column/8+1)*8, s.width-1), false
		case r == 0x1b && i < len(output) && output[i] == '[':
			// A control sequence: ESC [, parameters, intermediate bytes, a final byte.
			end := i + 1
			for end < len(output) && (output[end] < 0x40 || output[end] > 0x7e) {
				end++
			}
			if end < len(output) {
				s.control(output[i+1:end], output[end])
			}
			i = end + 1
		case r == 0x1b:
			i++ // ESC and one more character: not one we know
		case r < 0x20 || r == 0x7f:
		default:
			s.put(r)
		}
	}
}

// put writes a printable character at the cursor.
func (s *TerminalScreen) put(r rune) {
	if s.pendingWrap {
		s.wrapped[s.row] = true
		s.column = 0
		s.lineFeed()
	}
	s.makeRow(s.row)
	for len(s.rows[s.row]) <= s.column {
		s.rows[s.row] = append(s.rows[s.row], ' ')
	}
	s.rows[s.row][s.column] = r
	if s.column == s.width-1 {
		s.pendingWrap = true
	} else {
		s.column++
	}
}

// lineFeed moves the cursor down a row, scrolling the screen at its bottom.
func (s *TerminalScreen) lineFeed() {
	s.row++
	s.pendingWrap = false
	s.makeRow(s.row)
	if s.row >= s.top+s.height {
		s.top = s.row - s.height + 1
	}
}

// makeRow makes sure that the row exists.
func (s *TerminalScreen) makeRow(row int) {
	for len(s.rows) <= row {
		s.rows = append(s.rows, nil)
		s.wrapped = append(s.wrapped, false)
	}
}

// control carries out the control sequence ESC [ params final.
func (s *TerminalScreen) control(params string, final byte) {
	var numbers []int
	for _, p := range strings.Split(params, ";") {
		n, _ := strconv.Atoi(p) // an empty or odd parameter counts as 0, its default
		numbers = append(numbers, n)
	}
	n := max(numbers[0], 1) // the usual meaning of parameter 0: once
	s.pendingWrap = false
	switch final {
	case 'A':
		s.row = max(s.row-n, s.top)
	case 'B':
		s.row = min(s.row+n, s.top+s.height-1)
		s.makeRow(s.row)
	case 'C':
		s.column = min(s.column+n, s.width-1)
	case 'D':
		s.column = max(s.column-n, 0)
	case 'G':
		s.column = min(n-1, s.width-1)
	case 'H', 'f':
		column := 1
		if len(numbers) > 1 {
			column = max(numbers[1], 1)
		}
		s.row = s.top + min(n, s.height) - 1
		s.column = min(column-1, s.width-1)
		s.makeRow(s.row)
	case 'K':
		s.eraseInRow(numbers[0])
	case 'J':
		s.eraseInRow(numbers[0])
		switch numbers[0] {
		case 0: // below the cursor's row
			s.rows, s.wrapped = s.rows[:s.row+1], s.wrapped[:s.row+1]
		case 1: // above it, on the screen
			for r := s.top; r < s.row; r++ {
				s.rows[r], s.wrapped[r] = nil, false
			}
		case 2: // the whole screen
			for r := s.top; r < len(s.rows); r++ {
				s.rows[r], s.wrapped[r] = nil, false
			}
		}
	}
}

// eraseInRow erases from the cursor to the end of its row (how 0), from the row's start to
// the cursor (1), or the whole row (2).
func (s *TerminalScreen) eraseInRow(how int) {
	s.makeRow(s.row)
	line := s.rows[s.row]
	switch how {
	case 0:
		s.rows[s.row] = line[:min(s.column, len(line))]
		s.wrapped[s.row] = false
	case 1:
		for c := 0; c <= s.column && c < len(line); c++ {
			line[c] = ' '
		}
	case 2:
		s.rows[s.row], s.wrapped[s.row] = nil, false
	}
}

// Resize changes the screen's size. Rows that were wrapped are joined again and wrapped at
// the new width, and the cursor keeps its place in its text, as tmux does.
func (s *TerminalScreen) Resize(width, height int) {
	var rows [][]rune
	var wrapped []bool
	cursorRow, cursorColumn, cursorPending := 0, 0, false
	for first := 0; first < len(s.rows); {
		// One line of text: the rows from first to last, each but the last wrapped (and so
		// full: a row wraps only once its last column is written).
		last := first
		for last < len(s.rows)-1 && s.wrapped[last] {
			last++
		}
		var text []rune
		cursorAt := -1 // where the cursor is in text
		for r := first; r <= last; r++ {
			if r == s.row {
				cursorAt = len(text) + s.column
				if s.pendingWrap {
					cursorAt++
				}
			}
			text = append(text, s.rows[r]...)
		}
		start := len(rows)
		for rest := text; ; rest = rest[width:] {
			if len(rest) <= width {
				rows, wrapped = append(rows, rest), append(wrapped, false)
				break
			}
			rows, wrapped = append(rows, rest[:width:width]), append(wrapped, true)
		}
		if cursorAt >= 0 {
			cursorRow, cursorColumn, cursorPending = start+cursorAt/width, cursorAt%width, false
			if cursorAt > 0 && cursorColumn == 0 && cursorAt >= len(text) {
				// Just after text that ends a row: in the last column, waiting to wrap.
				cursorRow, cursorColumn, cursorPending = cursorRow-1, width-1, true
			}
		}
		first = last + 1
	}
	s.rows, s.wrapped = rows, wrapped
	s.width, s.height = width, height
	s.row, s.column, s.pendingWrap = cursorRow, cursorColumn, cursorPending
	s.makeRow(s.row)
	s.top = max(0, len(s.rows)-height)
}

// Rows returns every row, those scrolled off the top included, without trailing spaces and
// without the empty rows at the end.
func (s *TerminalScreen) Rows() []string {
	rows := make([]string, len(s.rows))
	for n, row := range s.rows {
		rows[n] = strings.TrimRight(string(row), " ")
	}
	for len(rows) > 0 && rows[len(rows)-1] == "" {
		rows = rows[:len(rows)-1]
	}
	return rows
}

// String returns Rows joined by "\n".
func (s *TerminalScreen) String() string { return strings.Join(s.Rows(), "\n") }
