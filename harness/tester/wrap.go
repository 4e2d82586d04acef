package tester

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ReportWidth is the widest line of a report: 78 columns, two short of the terminal's 80.
const ReportWidth = 78

// Wrap breaks text between words into lines of at most width columns, the first indented by
// first, the rest by rest: the one word-wrapper of the harness, for reports and for -h.
func Wrap(text, first, rest string, width int) string {
	// A quoted string is one word: its spaces are bytes to show, not places to break.
	const nbsp = "\x00"
	text = quoted.ReplaceAllStringFunc(text, func(q string) string { return strings.ReplaceAll(q, " ", nbsp) })
	var b strings.Builder
	line := first
	empty := true
	var words []string
	for _, word := range strings.Fields(text) {
		// A word wider than a line (a long path) is cut where the line ends.
		for room := width - len(rest); utf8.RuneCountInString(stripColour(word)) > room; {
			runes := []rune(word)
			words, word = append(words, string(runes[:room])), string(runes[room:])
		}
		words = append(words, word)
	}
	for _, word := range words {
		word = strings.ReplaceAll(word, nbsp, " ")
		if !empty && utf8.RuneCountInString(stripColour(line))+1+utf8.RuneCountInString(stripColour(word)) > width {
			b.WriteString(line + "\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	b.WriteString(line + "\n")
	return b.String()
}

// quoted matches a string as strconv.Quote writes it.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

func stripColour(s string) string {
	for {
		start := strings.Index(s, "\x1b[")
		if start < 0 {
			return s
		}
		end := strings.IndexByte(s[start:], 'm')
		if end < 0 {
			return s
		}
		s = s[:start] + s[start+end+1:]
	}
}

// human writes a duration the way a person does: "300 ms", "2 s", "1.5 s".
func human(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}
