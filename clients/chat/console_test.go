package main

import "testing"

// The rows a line takes decide how far up an erase must go; the pseudo-terminal tests in
// harness/clients_test.go check whole screens, with one column per character. These check the
// counting of wide and combining characters, which the harness's terminal does not draw.
func TestCursorRow(t *testing.T) {
	for _, tc := range []struct {
		text  string
		width int
		row   int
	}{
		{"> 12345678", 10, 0},                    // fills the row: the cursor waits in its last column
		{"> 123456789", 10, 1},                   // one more character wraps
		{"> 日本語の", 10, 0},                        // 2 + 4×2 columns: exactly full
		{"> 日本語の文", 10, 1},                       // the fifth wide character goes to the next row
		{"> 1日本語の", 10, 1},                       // a wide character does not fit in the last column: it moves whole
		{"> e\u0301e\u0301e\u0301e\u0301", 6, 0}, // combining accents take no column
		{"> 🙂🙂🙂🙂", 10, 0},
	} {
		if row := cursorRow(tc.text, tc.width); row != tc.row {
			t.Errorf("cursorRow(%q, %d) = %d, want %d", tc.text, tc.width, row, tc.row)
		}
	}
}

// visible shows control bytes and invalid UTF-8 as \xNN, other characters that are not
// printable as \uNNNN (\UNNNNNNNN beyond U+FFFF), and leaves tab and printable text alone.
// (The same through the real programs, class by class: TestClientsScreenSafe in harness.)
func TestVisible(t *testing.T) {
	for message, want := range map[string]string{
		"plain text, tab\tand é 日本 🙂": "plain text, tab\tand é 日本 🙂",
		"\x1b[2J\x00\x7f\xff":         `\x1b[2J\x00\x7f\xff`,
		"\u009b31m":                   `\u009b31m`,
		"cut \xe2\x82":                `cut \xe2\x82`,
		"evil \u202egnp.exe":          `evil \u202egnp.exe`,
		"tag \U000e0041":              `tag \U000e0041`,
	} {
		if got := visible(message); got != want {
			t.Errorf("visible(%q) = %q, want %q", message, got, want)
		}
	}
}
