package harness

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The terminal emulator that the client tests read screens with is tested itself: each case
// is output a terminal 10 columns wide would show as the rows given (what xterm and tmux show).
func TestTerminalScreen(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		output string
		rows   []string
	}{
		{"carriage return and erase", "Hello, world\r\n> see yx\b\x1b[K", []string{"Hello, wor", "ld", "> see y"}},
		{"a full row waits to wrap", "0123456789\r\n> x", []string{"0123456789", "> x"}},
		{"the next character wraps", "0123456789a", []string{"0123456789", "a"}},
		{"return cancels the wrap", "0123456789\rX", []string{"X123456789"}},
		{"cursor up cancels the wrap", "abc\r\n0123456789\x1b[AX", []string{"abc      X", "0123456789"}},
		{"up and clear to the end of the screen", "top\r\n> 0123456789abcdef\r\x1b[1A\x1b[J> x",
			[]string{"top", "> x"}},
		{"clear only the last row leaves the first", "> 0123456789abcdef\r\x1b[K> x",
			[]string{"> 01234567", "> x"}},
		{"left, right, column", "abcdef\x1b[3DX\x1b[2CY\x1b[2GZ", []string{"aZcXefY"}},
		{"down and position", "a\x1b[2Bb\x1b[1;5Hc", []string{"a   c", "", " b"}},
		{"tab stops, at most the last column", "a\tb\tc", []string{"a       bc"}},
		{"colours are dropped", "\x1b[31mred\x1b[0m", []string{"red"}},
		{"the screen scrolls: up stops at its top", strings.Repeat("x\r\n", 30) + "\x1b[40AX",
			append(append(repeatRows("x", 7), "X"), repeatRows("x", 22)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			screen := NewTerminalScreen(10, 24)
			screen.Write(tc.output)
			if diff := cmp.Diff(tc.rows, screen.Rows()); diff != "" {
				t.Errorf("rows for %q (-want +got):\n%s", tc.output, diff)
			}
		})
	}
}

func repeatRows(row string, n int) []string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = row
	}
	return rows
}

// A resize rewraps what was wrapped, leaves lines that were ended as they are, and moves the
// cursor with its text.
func TestTerminalScreenResize(t *testing.T) {
	t.Parallel()
	screen := NewTerminalScreen(10, 24)
	screen.Write("short\r\n> 0123456789abcdef")
	screen.Resize(6, 24)
	if diff := cmp.Diff([]string{"short", "> 0123", "456789", "abcdef"}, screen.Rows()); diff != "" {
		t.Fatalf("rows at 6 columns (-want +got):\n%s", diff)
	}
	// The cursor waits after "f" in the last column: the next character starts a new row.
	screen.Write("g")
	if diff := cmp.Diff([]string{"short", "> 0123", "456789", "abcdef", "g"}, screen.Rows()); diff != "" {
		t.Fatalf("rows after typing (-want +got):\n%s", diff)
	}
	screen.Resize(20, 24)
	screen.Write("\r\x1b[J>")
	if diff := cmp.Diff([]string{"short", ">"}, screen.Rows()); diff != "" {
		t.Fatalf("rows at 20 columns (-want +got):\n%s", diff)
	}
}
