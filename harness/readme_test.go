package harness

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the READMEs' output blocks from real runs")

// outputBlock matches a README block that a test checks: a marker comment naming the scenario's
// output, then a fenced text block holding it.
var outputBlock = regexp.MustCompile("(?s)<!-- output: ([a-z0-9/-]+) -->\n```text\n(.*?)```\n")

// readmeFiles are the READMEs whose blocks TestREADME checks, relative to the module's root:
// the map, and every folder's own. Stage 8 is a module of its own, and its tests check its
// README.
var readmeFiles = []string{
	"README.md",
	"stage1-blocking/README.md", "stage2-recvline/README.md", "stage3-nonblocking/README.md",
	"stage4-broadcast/README.md", "stage5-select/README.md", "stage6-hardened/README.md",
	"stage7-identity/README.md", "clients/README.md", "harness/cmd/check/README.md",
	"harness/cmd/fanout/README.md", "harness/README.md",
}

// readme is one README's path and text.
type readme struct{ path, text string }

// readmeBlocks returns every README, and their checked blocks by name (each name once in all
// of them).
func readmeBlocks(t *testing.T) ([]readme, map[string]string) {
	t.Helper()
	root := RootDir(t)
	var files []readme
	blocks := map[string]string{}
	for _, name := range readmeFiles {
		path := filepath.Join(root, name)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		files = append(files, readme{path, string(data)})
		for _, m := range outputBlock.FindAllStringSubmatch(string(data), -1) {
			require.NotContains(t, blocks, m[1], "two blocks named %s (the second in %s)", m[1], name)
			blocks[m[1]] = m[2]
		}
	}
	return files, blocks
}

// TestREADME runs every scenario the READMEs show, side by side, and compares what the programs
// really print with the READMEs' blocks. With -update it rewrites the blocks instead. The
// scenarios marked alone run in TestREADMEAlone instead.
func TestREADME(t *testing.T) {
	t.Parallel()
	checkREADME(t, true, func(s readmeScenario) bool { return !s.alone })
}

// TestREADMEAlone runs the scenarios that measure cores kept busy (the CPU table): as a test of
// its own, it runs before the tests that run side by side, with nothing beside it.
func TestREADMEAlone(t *testing.T) {
	checkREADME(t, false, func(s readmeScenario) bool { return s.alone })
}

// checkREADME runs the scenarios that pick chooses, side by side, and compares their output
// with the READMEs' blocks, or rewrites those blocks with -update. With all, it also requires
// every block of the READMEs (but those of the scenarios left out) to have a scenario.
func checkREADME(t *testing.T, all bool, pick func(readmeScenario) bool) {
	files, blocks := readmeBlocks(t)

	got := map[string]string{}
	var mu sync.Mutex // the scenarios run side by side
	// On macOS the scenarios with a pseudo-terminal are skipped, and -run may pick only some
	// scenarios: then only the blocks of the scenarios that ran can be checked.
	someSkipped := false
	ran := map[string]bool{}
	theirs := map[string]bool{} // the blocks of the scenarios that pick leaves out
	t.Run("scenarios", func(t *testing.T) {
		for _, s := range readmeScenarios {
			if !pick(s) {
				for _, name := range s.blocks {
					theirs[name] = true
				}
				continue
			}
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				mu.Lock()
				ran[s.name] = true
				mu.Unlock()
				defer func() {
					mu.Lock()
					someSkipped = someSkipped || t.Skipped()
					mu.Unlock()
				}()
				outputs := s.run(t)
				mu.Lock()
				defer mu.Unlock()
				for name, out := range outputs {
					got[name] = out
				}
			})
		}
	})
	for _, s := range readmeScenarios {
		someSkipped = someSkipped || pick(s) && !ran[s.name]
	}
	if t.Failed() {
		return
	}

	var names []string
	for name := range blocks {
		if !theirs[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if _, ok := got[name]; !ok && all && !someSkipped {
			t.Errorf("README block %q has no scenario that produces it", name)
		}
	}
	for name := range got {
		if _, ok := blocks[name]; !ok {
			t.Errorf("scenario output %q has no block in any README", name)
		}
	}

	if *update {
		require.False(t, someSkipped, "-update needs every scenario to run")
		for _, f := range files {
			updated := outputBlock.ReplaceAllStringFunc(f.text, func(block string) string {
				name := outputBlock.FindStringSubmatch(block)[1]
				out, ok := got[name]
				if !ok {
					return block
				}
				return fmt.Sprintf("<!-- output: %s -->\n```text\n%s```\n", name, out)
			})
			if updated != f.text {
				require.NoError(t, os.WriteFile(f.path, []byte(updated), 0o644))
			}
		}
		return
	}
	for _, name := range names {
		want, ok := got[name]
		if !ok {
			continue
		}
		compare := blockComparers[name]
		if compare == nil {
			compare = func(s string) string { return s }
		}
		if diff := cmp.Diff(compare(blocks[name]), compare(want)); diff != "" {
			t.Errorf("README block %q does not match a real run (-README +real); "+
				"run `go test ./harness/ -run TestREADME -update` if the change is intended:\n%s", name, diff)
		}
	}
}

// blockComparers reduce a block to what must not change, for blocks with figures that vary
// from run to run.
var blockComparers = map[string]func(string) string{
	"cputable": cpuClasses,
}

// cpuClasses keeps of the CPU table only each stage's name and whether it burns CPU (over a
// quarter of a core; on a quiet machine it is a whole one, but this machine may be shared) or
// sleeps (under 2%); a figure in between is kept as it is, so that it fails.
func cpuClasses(table string) string {
	var out []string
	row := regexp.MustCompile(`^(stage\S+)\s+([0-9.]+)%`)
	for _, line := range strings.Split(table, "\n") {
		m := row.FindStringSubmatch(line)
		if strings.HasPrefix(line, "CPU used") {
			// The heading, but for the machine it ran on.
			out = append(out, regexp.MustCompile(`\(.*\)$`).ReplaceAllString(line, "(MACHINE)"))
		}
		if m == nil {
			continue
		}
		var use float64
		fmt.Sscan(m[2], &use)
		class := m[2] + "%"
		switch {
		case use > 25:
			class = "burns a core"
		case use < 2:
			class = "sleeps"
		}
		out = append(out, m[1]+": "+class)
	}
	return strings.Join(out, "\n")
}

// normalise makes a transcript independent of the free port the test used: the README's
// commands use the default port, 5555. A server was started with -addr 127.0.0.1:PORT where the
// README runs it with the default -addr :5555, so in what a server prints that address
// becomes :5555.
func normalise(transcript string, port int, server bool) string {
	p := fmt.Sprint(port)
	transcript = strings.ReplaceAll(transcript, "\r\n", "\n")
	if server {
		transcript = strings.ReplaceAll(transcript, "127.0.0.1:"+p, ":5555")
	}
	transcript = strings.ReplaceAll(transcript, "port "+p+"...", "port 5555...")
	// The busy port's hint suggests the next port: 5556 in the README.
	transcript = strings.ReplaceAll(transcript, "try -addr 127.0.0.1:"+fmt.Sprint(port+1), "try -addr :5556")
	return strings.ReplaceAll(transcript, ":"+p, ":5555")
}

// Each stage's README links to its neighbours under their own numbers: "← Stage 6" leads to
// stage 6's folder, not to another.
func TestREADMENavigation(t *testing.T) {
	t.Parallel()
	root := RootDir(t)
	readmes, err := filepath.Glob(filepath.Join(root, "stage*", "README.md"))
	require.NoError(t, err)
	require.NotEmpty(t, readmes)
	link := regexp.MustCompile(`\[(?:← )?Stage (\d+)(?: →)?\]\(\.\./stage(\d+)-[a-z0-9-]+/README\.md\)`)
	for _, path := range readmes {
		text, err := os.ReadFile(path)
		require.NoError(t, err)
		links := link.FindAllStringSubmatch(string(text), -1)
		require.NotEmpty(t, links, "%s links to no other stage", path)
		for _, m := range links {
			require.Equal(t, m[2], m[1], "%s: %s leads to stage %s's folder", path, m[0], m[2])
		}
	}
}
