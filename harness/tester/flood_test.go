package tester

import (
	"strings"
	"testing"
)

// A numbered line is as long as asked and reads back as itself, with or without a sender; a
// line cut, run into another or changed on the way does not.
func TestNumberedLine(t *testing.T) {
	if want := "line 0000007 " + strings.Repeat("-", 85) + "\r\n"; FloodLine(7) != want {
		t.Errorf("FloodLine(7) = %q, want %q", FloodLine(7), want)
	}
	for _, c := range []struct{ sender, i, size int }{{-1, 42, 100}, {3, 0, 1000}, {12, 59, 30}} {
		line := NumberedLine(c.sender, c.i, c.size, "\n")
		if len(line) != c.size || !strings.HasSuffix(line, "-\n") {
			t.Fatalf("NumberedLine(%d, %d, %d) = %q", c.sender, c.i, c.size, line)
		}
		text := strings.TrimSuffix(line, "\n")
		if sender, i, ok := ParseNumbered(text); !ok || sender != c.sender || i != c.i {
			t.Errorf("ParseNumbered(%q) = %d, %d, %v", text, sender, i, ok)
		}
		for _, wrong := range []string{text[:len(text)-1] + "x", text[1:], text + text} {
			if _, _, ok := ParseNumbered(wrong); ok {
				t.Errorf("ParseNumbered(%q) took it for a numbered line", wrong)
			}
		}
	}
}
