package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every server says what it is when asked (-h): its own name, not the path of a build cache,
// and one sentence. A misused command line gets one line on stderr and exit status 2.
func TestStagesCommandLine(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"stage1-blocking", "stage2-recvline", "stage3-nonblocking",
		"stage4-broadcast", "stage5-select", "stage7-identity"} {
		t.Run(pkg, func(t *testing.T) {
			needFolder(t, pkg)
			help := Start(t, Binary(t, pkg), nil, "-h")
			require.Equal(t, 0, help.WaitExit(t, Deadline))
			usage := help.Stderr()
			require.True(t, strings.HasPrefix(usage, "Usage: "+pkg+" [flags]\n\n"), "got %q", usage)
			require.Contains(t, usage, "-addr")

			misuses := [][]string{{"extra"}, {"-addr", "127.0.0.1:0", "extra"}}
			if strings.HasPrefix(pkg, "stage5") || strings.HasPrefix(pkg, "stage7") {
				misuses = append(misuses, []string{"-max-line", "0"}, []string{"-max-line", "-5"},
					[]string{"-max-pending", "0"}, []string{"-max-pending", "-1"})
			}
			for _, args := range misuses {
				p := Start(t, Binary(t, pkg), nil, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
				require.Equal(t, 2, p.WaitExit(t, Deadline), "%v", args)
				stderr := p.Stderr()
				require.Equal(t, 1, strings.Count(stderr, "\n"), "one line for %v, got %q", args, stderr)
				require.True(t, strings.HasPrefix(stderr, pkg+": "), "got %q", stderr)
				require.Empty(t, p.Lines(), "%v", args)
			}
		})
	}
}

// Stages 5 and 6 explain why they cannot listen as the others do (checkListenErrors, in stage1to4_test.go).
func TestStage5ListenErrors(t *testing.T) {
	t.Parallel()
	checkListenErrors(t, "stage5-select")
}

func TestStage7ListenErrors(t *testing.T) {
	t.Parallel()
	needFolder(t, "stage7-identity")
	checkListenErrors(t, "stage7-identity")
}

// columns is how wide line is in a terminal, whose tab stops are 8 columns apart.
func columns(line string) int {
	width := 0
	for _, r := range line {
		if r == '\t' {
			width += 8 - width%8
		} else {
			width++
		}
	}
	return width
}

// Every program's -h fits the 80-column terminal a workshop attendee reads it in: the stages,
// the clients, the tester and the harness's commands.
func TestEveryHelpFits80Columns(t *testing.T) {
	t.Parallel()
	root := RootDir(t)
	var programs []string
	for _, pattern := range []string{"stage[1-7]-*", "clients/*", "harness/cmd/*"} {
		found, err := filepath.Glob(filepath.Join(root, pattern))
		require.NoError(t, err)
		for _, dir := range found {
			if info, err := os.Stat(filepath.Join(dir, "main.go")); err == nil && !info.IsDir() {
				rel, _ := filepath.Rel(root, dir)
				programs = append(programs, filepath.ToSlash(rel))
			}
		}
	}
	require.Contains(t, programs, "harness/cmd/cputable")
	require.Contains(t, programs, "clients/chat")
	for _, pkg := range programs {
		t.Run(strings.ReplaceAll(pkg, "/", "_"), func(t *testing.T) {
			t.Parallel()
			help := Start(t, Binary(t, pkg), nil, "-h")
			help.WaitExit(t, Deadline)
			usage := help.Stderr() + strings.Join(help.Lines(), "\n")
			require.Contains(t, usage, "-", "no usage from %s -h", pkg)
			for _, line := range strings.Split(usage, "\n") {
				require.LessOrEqual(t, columns(line), 80, "%s -h is too wide for 80 columns: %q", pkg, line)
			}
		})
	}
}
