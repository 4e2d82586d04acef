//go:build linux || darwin

package tester

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// A failure shows the server's last lines before it and the lines that name an error, and
// counts the rest, which -v shows: sixty lines of 125 characters would fill 120 rows of an
// 80-column terminal and push the failure off the screen.
func TestReportLogExcerpt(t *testing.T) {
	t.Parallel()
	res := &Result{Check: Check{Name: "stalled", Title: "a client that stops reading", Required: true},
		Expected: "client-2 to receive the line", Hint: "no write waits for one client"}
	long := strings.Repeat("x", 100)
	res.Transcript = append(res.Transcript, "[tester] started: python3 harness/testdata/corpus/py-relay-drain/server.py 40111")
	for i := 1; i <= 60; i++ {
		res.Transcript = append(res.Transcript, fmt.Sprintf("[your server] client %d joined %s", i, long))
		if i == 20 {
			res.Transcript = append(res.Transcript, "[your server] Error: client 20 is too slow")
		}
	}
	res.Transcript = append(res.Transcript, "[client-2] received nothing more within 10 s")
	res.failedAt = len(res.Transcript)
	for i := 61; i <= 67; i++ {
		res.Transcript = append(res.Transcript, fmt.Sprintf("[your server] client %d joined later", i))
	}

	report := res.Report(false, false)
	var server []string
	for _, line := range strings.Split(report, "\n") {
		if strings.HasPrefix(line, "    [your server] ") {
			server = append(server, line)
		}
	}
	cut := strings.Repeat("x", 11) + "…" + strings.Repeat("x", 21) + " (117 bytes)"
	want := []string{
		"    [your server] ... (20 lines)",
		"    [your server] Error: client 20 is too slow",
		"    [your server] ... (35 lines)",
		"    [your server] client 56 joined " + cut,
		"    [your server] client 57 joined " + cut,
		"    [your server] client 58 joined " + cut,
		"    [your server] client 59 joined " + cut,
		"    [your server] client 60 joined " + cut,
		"    [your server] ... (2 lines)",
		"    [your server] client 63 joined later",
		"    [your server] client 64 joined later",
		"    [your server] client 65 joined later",
		"    [your server] client 66 joined later",
		"    [your server] client 67 joined later",
	}
	if strings.Join(server, "\n") != strings.Join(want, "\n") {
		t.Errorf("the failure shows the server's lines\n%s\nwant\n%s", strings.Join(server, "\n"), strings.Join(want, "\n"))
	}
	for _, line := range strings.Split(report, "\n") {
		if utf8.RuneCountInString(line) > 80 {
			t.Errorf("wider than 80 columns: %q", line)
		}
	}
	if !strings.Contains(report, "    [tester] started: python3 harness/testdata/corpus/py-relay-drain/server.py\n      40111\n") {
		t.Errorf("a long line of the tester's is not wrapped between words:\n%s", report)
	}
	if !strings.Contains(report, "  (-v shows the 57 lines of your server's left out here)\n") {
		t.Errorf("no count of the lines left out, or the wrong one:\n%s", report)
	}
	short := &Result{Check: res.Check, Expected: res.Expected, Hint: res.Hint, failedAt: 1,
		Transcript: append([]string{"[tester] started"}, res.Transcript[2:14]...)}
	if got := short.Report(false, false); strings.Contains(got, "not shown") {
		t.Errorf("a log of 12 lines is cut:\n%s", got)
	}
	if verbose := res.Report(true, false); strings.Count(verbose, "    [your server] client ") != 67 {
		t.Errorf("-v shows every line:\n%s", verbose)
	}
}
