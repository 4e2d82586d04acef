//go:build linux || darwin

package tester

import (
	"fmt"
	"regexp"
	"strings"
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
	styled          bool              // the server's house style has been reported
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
	case res.Err != nil || !res.Passed:
		b.WriteString(paint("31", "✗ ") + head + "\n")
		showTranscript = true
	case res.Skipped != "":
		b.WriteString(paint("33", "- ") + head + "\n")
	default:
		b.WriteString(paint("32", "✓ ") + head + "\n")
	}
	showTail := len(res.Tail) > 0 && (showTranscript || res.Ended != "")
	transcript, failedAt, left := res.Transcript, res.failedAt, 0
	if showTail {
		transcript, failedAt = withoutTail(transcript, failedAt, res.Tail)
	}
	if showTranscript {
		if !verbose {
			transcript, left = excerpt(transcript, failedAt)
		}
		for _, line := range transcript {
			if strings.HasPrefix(line, serverPrefix) {
				b.WriteString("    " + line + "\n")
			} else {
				// The tester's and the clients' lines wrap between words, not in the middle
				// of one, as an 80-column terminal would.
				b.WriteString(Wrap(line, "    ", "      ", ReportWidth))
			}
		}
		if left > 0 {
			b.WriteString(fmt.Sprintf("  (-v shows the %d lines of your server's left out here)\n", left))
		}
	}
	if showTail {
		if len(res.Tail) == 1 {
			b.WriteString("  your server's last line:\n")
		} else {
			b.WriteString(fmt.Sprintf("  your server's last %d lines:\n", len(res.Tail)))
		}
		for _, line := range res.Tail {
			b.WriteString("    " + fit("| "+printable(line), len(line), excerptWidth) + "\n")
		}
	}
	switch {
	case res.Err != nil:
		b.WriteString(Wrap("could not run: "+res.Err.Error(), "  ", "    ", ReportWidth))
	case !res.Passed && !res.Check.Required:
		b.WriteString(Wrap("not seen: "+res.Expected, "  ", "    ", ReportWidth))
		b.WriteString(Wrap(paint("1", "hint: ")+rp.hint(res), "  ", "    ", ReportWidth))
	case !res.Passed:
		b.WriteString(Wrap(paint("1", "expected: ")+res.Expected, "  ", "    ", ReportWidth))
		b.WriteString(Wrap(paint("1", "hint: ")+rp.hint(res), "  ", "    ", ReportWidth))
	case res.Skipped != "":
		b.WriteString(Wrap(res.Skipped, "  ", "  ", ReportWidth))
	}
	if res.Observation != "" && res.Passed {
		b.WriteString(Wrap(res.Observation, "  ", "  ", ReportWidth))
	}
	if res.Style != "" && !rp.styled {
		rp.styled = true
		b.WriteString(Wrap(paint("36", "house style: ")+res.Style, "  ", "  ", ReportWidth))
	}
	if res.Killed && res.Passed {
		b.WriteString(Wrap(fmt.Sprintf("note: your server did not stop within %s of SIGTERM; the tester killed it", human(StopGrace)), "  ", "  ", ReportWidth))
	}
	return b.String()
}

// withoutTail leaves out of transcript the server's last lines that the report shows as its
// tail (a traceback is shown once), and moves failedAt with them.
func withoutTail(transcript []string, failedAt int, tail []string) ([]string, int) {
	drop := map[int]bool{}
	t := len(tail) - 1
	for i := len(transcript) - 1; i >= 0 && t >= 0; i-- {
		line := transcript[i]
		if !strings.HasPrefix(line, serverPrefix) {
			continue
		}
		if line != fit(serverPrefix+printable(tail[t]), len(tail[t]), excerptWidth) {
			break
		}
		drop[i] = true
		t--
	}
	var kept []string
	moved := failedAt
	for i, line := range transcript {
		if drop[i] {
			if i < failedAt {
				moved--
			}
			continue
		}
		kept = append(kept, line)
	}
	return kept, moved
}

// excerptLast is how many of the server's lines before a failure the failure shows,
// excerptNamed how many earlier lines that name an error, and excerptWidth how wide a
// server's line may be in it, so that with its indent it fits 80 columns.
const (
	excerptLast  = 5
	excerptNamed = 5
	excerptWidth = 76
	excerptWhole = 12 // a log this short is shown whole
)

// serverPrefix starts each of the server's lines in a transcript; a line that counts lines not
// shown starts with serverPrefix + "... (".
const serverPrefix = "[your server] "

// namesFailure matches a server's line that says something went wrong.
var namesFailure = regexp.MustCompile(`(?i)error|exception|traceback|panic|fatal|fail|refused|reset|broken pipe|in use|denied|abort|killed|warn`)

// excerpt keeps of a failed check's transcript the tester's and clients' lines, the server's
// last excerptLast lines before the failure (at failedAt; 0 if the check did not fail), its
// last excerptLast lines of all, and up to excerptNamed others that name an error, and replaces each run of the server's lines
// it leaves out with one line that counts them: a stage 5 server logs a line per client, and
// sixty of them would push the failure off the screen. It returns how many it left out.
func excerpt(transcript []string, failedAt int) ([]string, int) {
	if failedAt <= 0 || failedAt > len(transcript) {
		failedAt = len(transcript)
	}
	isServer := func(line string) bool {
		return strings.HasPrefix(line, serverPrefix) && !strings.HasPrefix(line, serverPrefix+"... (")
	}
	count := 0
	for _, line := range transcript {
		if isServer(line) {
			count++
		}
	}
	if count <= excerptWhole {
		return transcript, 0
	}
	keep := make([]bool, len(transcript))
	// The lines just before the failure, and the server's last lines (what a server that
	// held its output in a buffer printed at its end, or its last words).
	for _, end := range []int{failedAt, len(transcript)} {
		last := 0
		for i := end - 1; i >= 0 && last < excerptLast; i-- {
			if isServer(transcript[i]) {
				keep[i] = true
				last++
			}
		}
	}
	named := 0
	for i, line := range transcript {
		if isServer(line) && !keep[i] && named < excerptNamed && namesFailure.MatchString(line[len(serverPrefix):]) {
			keep[i] = true
			named++
		}
	}
	var kept, run []string
	left := 0
	flush := func() {
		switch {
		case len(run) == 1: // a line that counts one line saves nothing
			kept = append(kept, shorten(run[0]))
		case len(run) > 1:
			kept = append(kept, fmt.Sprintf("%s... (%d lines)", serverPrefix, len(run)))
			left += len(run)
		}
		run = nil
	}
	for i, line := range transcript {
		if isServer(line) && !keep[i] {
			run = append(run, line)
			continue
		}
		flush()
		if isServer(line) {
			line = shorten(line)
		}
		kept = append(kept, line)
	}
	flush()
	return kept, left
}

// shorten fits a server's line of the transcript to excerptWidth.
func shorten(line string) string {
	return fit(line, len(strings.TrimPrefix(line, serverPrefix)), excerptWidth)
}

// fit cuts line in the middle to width columns, saying how long it was: a long line takes
// two rows or more, and its start and end say what it is. size is the length to tell, in
// bytes (0 for line's own).
func fit(line string, size, width int) string {
	runes := []rune(line)
	if len(runes) <= width {
		return line
	}
	if size == 0 {
		size = len(line)
	}
	length := fmt.Sprintf(" (%d bytes)", size)
	keep := width - len(length) - 1
	head := keep * 2 / 3
	return string(runes[:head]) + "…" + string(runes[len(runes)-(keep-head):]) + length
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

// Rewrap undoes the wrapping of a report's transcript lines and wraps them again, for the
// tests that put a shorter name in place of a long path.
func Rewrap(report string, replace func(string) string) string {
	report = strings.ReplaceAll(report, "\n      ", " ")
	// The check command's heading wraps with an indent of two (see Wrap).
	for headed.MatchString(report) {
		report = headed.ReplaceAllString(report, "$1 $2")
	}
	report = replace(report)
	var b strings.Builder
	for _, line := range strings.SplitAfter(report, "\n") {
		switch {
		case strings.HasPrefix(line, "    [") && !strings.HasPrefix(line, "    "+serverPrefix):
			b.WriteString(Wrap(strings.TrimSuffix(strings.TrimPrefix(line, "    "), "\n"), "    ", "      ", ReportWidth))
		case strings.HasPrefix(line, "Your server: "):
			b.WriteString(Wrap(strings.TrimSuffix(line, "\n"), "", "  ", ReportWidth))
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}

// headed matches the heading's first line and the next, its continuation.
var headed = regexp.MustCompile(`(?m)^(Your server: .*)\n  (\S.*)$`)
