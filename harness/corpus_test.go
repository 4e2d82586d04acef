//go:build linux || darwin

package harness

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// corpusVerdict is a corpus server's verdict.json: how to build and run it, and which required
// checks it must fail at each stage it claims (every other required check must pass).
type corpusVerdict struct {
	Lang   string              `json:"lang"`
	Build  []string            `json:"build"`
	Run    []string            `json:"run"`
	Stages map[string]struct { // by stage number
		Fail []string `json:"fail"`
		// Hints holds, for a check it must fail, words its hint must contain: a broken
		// server fails on its lesson, and for the reason of that lesson.
		Hints map[string]string `json:"hints"`
	} `json:"stages"`
	// Style holds words of the house-style observation its checks must report (a quote of
	// its greeting, say): the style was seen, and looked past.
	Style string `json:"style"`
	Why   string `json:"why"`
}

// corpusToolchains is the command each language of the corpus needs.
var corpusToolchains = map[string]string{"python3": "python3", "cc": "cc", "go": "go", "node": "node"}

// The servers of testdata/corpus were written the way people outside this repository write
// them, in Python, C, Go and Node. Each gets the verdict its verdict.json gives it at each
// stage it claims: a correct one passes every required check, a buggy one fails exactly the
// checks of its bug. A language whose toolchain is missing is skipped, and said so once.
func TestCheckCorpus(t *testing.T) {
	t.Parallel()
	root, err := Root()
	require.NoError(t, err)
	dirs, err := filepath.Glob(filepath.Join(root, "harness", "testdata", "corpus", "*", "verdict.json"))
	require.NoError(t, err)
	if len(dirs) == 0 {
		t.Skip("no corpus in this checkout (harness/testdata/corpus)")
	}

	type entry struct {
		name    string
		verdict corpusVerdict
		program *tester.Program
		stages  []int
		failed  map[int][]string          // required checks that failed, by stage
		hints   map[int]map[string]string // their hints, by stage and check
		reports map[int]string            // their reports, for the test's message
		style   string                    // the first house-style observation
		took    time.Duration
		err     error
	}
	var entries []*entry
	missing := map[string]bool{}
	interpreters := map[string]string{} // by toolchain: the program it really runs
	for _, path := range dirs {
		dir := filepath.Dir(path)
		e := &entry{name: filepath.Base(dir), failed: map[int][]string{}, hints: map[int]map[string]string{}, reports: map[int]string{}}
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &e.verdict), path)
		tool, known := corpusToolchains[e.verdict.Lang]
		require.True(t, known, "%s: unknown lang %q", path, e.verdict.Lang)
		if _, err := exec.LookPath(tool); err != nil {
			missing[e.verdict.Lang] = true
			continue
		}
		out := t.TempDir()
		fill := func(args []string) []string {
			filled := make([]string, len(args))
			for i, a := range args {
				filled[i] = strings.NewReplacer("{dir}", dir, "{out}", out).Replace(a)
			}
			return filled
		}
		if len(e.verdict.Build) > 0 {
			build := fill(e.verdict.Build)
			cmd := exec.Command(build[0], build[1:]...)
			cmd.Dir = root // a Go build runs inside this module
			if output, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %s: %v\n%s", e.name, tester.ShellWords(build), err, output)
			}
		}
		e.program = &tester.Program{Args: fill(e.verdict.Run)}
		// A version manager's shim (pyenv's python3 is a shell script) costs more to start
		// than the server it starts, and the corpus starts its servers over a hundred times:
		// start the interpreter the shim would choose, directly.
		if e.program.Args[0] == tool {
			if _, ok := interpreters[tool]; !ok {
				interpreters[tool] = realInterpreter(tool)
			}
			e.program.Args[0] = interpreters[tool]
		}
		for stage := range e.verdict.Stages {
			n, err := strconv.Atoi(stage)
			require.NoError(t, err, "%s: stage %q", path, stage)
			e.stages = append(e.stages, n)
		}
		sort.Ints(e.stages)
		entries = append(entries, e)
	}
	var langs []string
	for lang := range missing {
		langs = append(langs, lang)
	}
	sort.Strings(langs)
	for _, lang := range langs {
		t.Logf("no %s on this machine: the corpus's %s servers are skipped", corpusToolchains[lang], lang)
	}

	// Eight servers at a time: most of a check is waiting, each server has its own port and
	// process group, and CPU is measured per group. The longest go first, so that none is
	// left running alone at the end: those with the most checks (stages 5 and 7), and among
	// them those that fail the most, since a failing check often waits out a deadline.
	longer := func(e *entry) (checks, fails int) {
		for _, stage := range e.stages {
			checks = max(checks, len(tester.StageChecks(stage)))
			fails += len(e.verdict.Stages[strconv.Itoa(stage)].Fail)
		}
		return checks, fails
	}
	slices.SortStableFunc(entries, func(a, b *entry) int {
		aChecks, aFails := longer(a)
		bChecks, bFails := longer(b)
		return cmp.Or(bChecks-aChecks, bFails-aFails)
	})
	running := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			running <- struct{}{}
			defer func() { <-running }()
			start := time.Now()
			defer func() { e.took = time.Since(start) }()
			// A check that is the same at two stages (broadcast at 4 and at 5, say) is run
			// once, and its verdict counts at both.
			done := map[string]*tester.Result{}
			for _, stage := range e.stages {
				for _, check := range tester.StageChecks(stage) {
					if !check.Required {
						continue
					}
					same := fmt.Sprint(check.Name, reflect.ValueOf(check.Run).Pointer(), check.Requires)
					res, ok := done[same]
					if !ok {
						res = tester.RunCheck(e.program, stage, check)
						done[same] = res
					}
					if res.Err != nil {
						e.err = fmt.Errorf("stage %d, %s: %v\n%s", stage, check.Name, res.Err, res.Report(true, false))
						return
					}
					if e.style == "" {
						e.style = res.Style
					}
					if !res.Passed {
						e.failed[stage] = append(e.failed[stage], check.Name)
						if e.hints[stage] == nil {
							e.hints[stage] = map[string]string{}
						}
						e.hints[stage][check.Name] = res.Hint
						e.reports[stage] += res.Report(false, false)
					}
				}
			}
		}()
	}
	wg.Wait()
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.name, b.name) })
	for _, e := range entries {
		t.Run(e.name, func(t *testing.T) {
			t.Logf("checked in %s", e.took.Round(100*time.Millisecond))
			require.NoError(t, e.err)
			for _, stage := range e.stages {
				want := slices.Clone(e.verdict.Stages[strconv.Itoa(stage)].Fail)
				got := slices.Clone(e.failed[stage])
				sort.Strings(want)
				sort.Strings(got)
				if want == nil {
					want = []string{}
				}
				if got == nil {
					got = []string{}
				}
				require.Equal(t, want, got, "stage %d of %s (%s): the required checks that failed\n%s",
					stage, e.name, e.verdict.Why, e.reports[stage])
				for check, words := range e.verdict.Stages[strconv.Itoa(stage)].Hints {
					require.Contains(t, e.hints[stage][check], words, "stage %d of %s, %s: the hint\n%s",
						stage, e.name, check, e.reports[stage])
				}
			}
			if e.verdict.Style != "" {
				require.Contains(t, e.style, e.verdict.Style, "%s: the house style reported", e.name)
			} else {
				require.Empty(t, e.style, "%s keeps no house style, but one was reported", e.name)
			}
		})
	}
}

// realInterpreter is the program that tool runs when it is a version manager's shim (pyenv,
// asdf), found by asking the interpreter itself; tool itself when that cannot be told.
func realInterpreter(tool string) string {
	var ask []string
	switch tool {
	case "python3":
		ask = []string{"-c", "import sys; print(sys.executable)"}
	case "node":
		ask = []string{"-e", "console.log(process.execPath)"}
	default:
		return tool
	}
	out, err := exec.Command(tool, ask...).Output()
	if path := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(path) {
		return path
	}
	return tool
}
