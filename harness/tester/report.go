//go:build linux || darwin

package tester

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Report is a result as the check command prints it: a headline, then for a failure (or
// always, if verbose) the transcript, what was expected and the hint. Lines are wrapped to
// fit 80 columns where they are prose.
func (res *Result) Report(verbose, colour bool) string {
	return (&Reporter{Verbose: verbose, Colour: colour}).Report(res)
}

// Reporter reports the results of one run of the check command. It prints each hint once:
// a later check that failed for the same reason refers to the first (the hint on buffered
// output is nine lines, and a server that buffers fails every check that reads its log).
type Reporter struct {
	Verbose, Colour bool
	hinted          map[string]string // a hint printed, and the check it was printed under
}

// Report is res as the check command prints it.
func (rp *Reporter) Report(res *Result) string {
	verbose, colour := rp.Verbose, rp.Colour
	paint := func(code, s string) string {
		if !colour {
			return s
		}
		return "\x1b[" + code + "m" + s + "\x1b[0m"
	}
	var b strings.Builder
	kind := ""
	if !res.Check.Required {
		kind = " (observation)"
	}
	head := res.Check.Name + kind + ": " + res.Check.Title
	showTranscript := verbose
	switch {
	case !res.Check.Required:
		// An observation never fails, so it never wears ✗, even when it could not see
		// what it looks for.
		b.WriteString(paint("36", "• ") + head + "\n")
		showTranscript = showTranscript || res.Err != nil || !res.Passed
	case res.Err != nil:
		b.WriteString(paint("31", "✗ ") + head + "\n")
		showTranscript = true
	case !res.Passed:
		b.WriteString(paint("31", "✗ ") + head + "\n")
		showTranscript = true
	case res.Skipped != "":
		b.WriteString(paint("33", "- ") + head + "\n")
	default:
		b.WriteString(paint("32", "✓ ") + head + "\n")
	}
	if showTranscript {
		for _, line := range res.Transcript {
			b.WriteString("    " + line + "\n")
		}
	}
	if len(res.Tail) > 0 && (showTranscript || res.Ended != "") {
		b.WriteString(fmt.Sprintf("  your server's last %d lines, whole:\n", len(res.Tail)))
		for _, line := range res.Tail {
			b.WriteString("    | " + printable(line) + "\n")
		}
	}
	switch {
	case res.Err != nil:
		b.WriteString(wrap("could not run: "+res.Err.Error(), "  ", "    "))
	case !res.Passed && !res.Check.Required:
		b.WriteString(wrap("not seen: "+res.Expected, "  ", "    "))
		b.WriteString(wrap(paint("1", "hint: ")+rp.hint(res), "  ", "    "))
	case !res.Passed:
		b.WriteString(wrap(paint("1", "expected: ")+res.Expected, "  ", "    "))
		b.WriteString(wrap(paint("1", "hint: ")+rp.hint(res), "  ", "    "))
	case res.Skipped != "":
		b.WriteString(wrap(res.Skipped, "  ", "  "))
	}
	if res.Observation != "" && res.Passed {
		b.WriteString(wrap(res.Observation, "  ", "  "))
	}
	if res.Killed && res.Passed {
		b.WriteString(wrap(fmt.Sprintf("note: your server did not stop within %s of SIGTERM; the tester killed it", human(StopGrace)), "  ", "  "))
	}
	return b.String()
}

// hint is res's hint, or, if an earlier check of the run had the same, a reference to it.
func (rp *Reporter) hint(res *Result) string {
	if first, ok := rp.hinted[res.Hint]; ok {
		return "the same as for " + first + ", above"
	}
	if rp.hinted == nil {
		rp.hinted = map[string]string{}
	}
	rp.hinted[res.Hint] = res.Check.Name
	return res.Hint
}

// wrap breaks text into lines of at most 78 columns, the first indented by first, the rest
// by rest.
func wrap(text, first, rest string) string {
	// A quoted string is one word: its spaces are bytes to show, not places to break.
	const nbsp = "\x00"
	text = quoted.ReplaceAllStringFunc(text, func(q string) string { return strings.ReplaceAll(q, " ", nbsp) })
	var b strings.Builder
	line := first
	empty := true
	for _, word := range strings.Fields(text) {
		word = strings.ReplaceAll(word, nbsp, " ")
		if !empty && utf8.RuneCountInString(stripColour(line))+1+utf8.RuneCountInString(stripColour(word)) > 78 {
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
