package harness

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
	"github.com/stretchr/testify/require"
)

// The pictures in the READMEs are honest: each SVG is exactly what the drawing code makes of
// the data file beside it, the text beside it in its README says the figures of that file,
// and each CPU data file still says what the stage does on the machine running the test:
// stages 3 and 4 burn most of a core while idle, stages 5 and 6 sleep. (The stages that burn
// a core are measured live by TestStage3BurnsCPUWhileIdle and TestStage4BurnsCPUWhileIdle,
// which run alone and compare with their pictures; the sleeping ones here, side by side with
// other tests, since a sleeping server takes no core.)
func TestPictures(t *testing.T) {
	t.Parallel()
	root := RootDir(t)

	t.Run("drawn from their data", func(t *testing.T) {
		drawn := map[string]bool{}
		drawings := map[string]pictures.Drawing{}
		for _, p := range pictures.All() {
			drawn[p.SVG] = true
			drawing, err := p.Render(root)
			require.NoError(t, err)
			drawings[p.SVG] = drawing
			onDisk, err := os.ReadFile(filepath.Join(root, p.SVG))
			require.NoError(t, err)
			if !bytes.Equal(drawing.SVG, onDisk) {
				t.Errorf("%s is not what %s draws (%s): if the data file is new, run `%s`; "+
					"if the SVG was edited by hand, or the data changed without a new run, that is the lie "+
					"this test is for", p.SVG, strings.Join(p.Inputs, " and "), firstDifference(drawing.SVG, onDisk), pictures.RedrawCommand)
			}
			require.Less(t, len(onDisk), pictures.MaxSize, "%s", p.SVG)
			require.NotContains(t, strings.ToLower(string(onDisk)), "<script", "%s", p.SVG)
		}
		// Every SVG in the repository is one of them: no picture without its data.
		err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if entry.IsDir() && strings.HasPrefix(entry.Name(), ".") {
				return filepath.SkipDir
			}
			if rel, _ := filepath.Rel(root, path); strings.HasSuffix(path, ".svg") && !drawn[rel] {
				t.Errorf("%s is not drawn from a data file (package harness/pictures lists those that are)", rel)
			}
			return nil
		})
		require.NoError(t, err)

		// Every picture is shown in a README, with its figures beside it as they are now.
		blocks, err := pictures.ReadmeBlocks(root)
		require.NoError(t, err)
		shown := map[string]bool{}
		for _, b := range blocks {
			shown[b.SVG] = true
			drawing, ok := drawings[b.SVG]
			if !ok {
				t.Errorf("%s shows %s, which is not one of the pictures drawn from data", b.README, b.SVG)
				continue
			}
			ref, _ := filepath.Rel(filepath.Dir(filepath.Join(root, b.README)), filepath.Join(root, b.SVG))
			if want := pictures.BlockText(ref, drawing, func(s string) string { return s }); !pictures.SameText(want, b.Text) {
				t.Errorf("%s: the text beside %s does not say what the picture shows: run `%s`\nwant: %s\nhave: %s",
					b.README, ref, pictures.RedrawCommand, want, b.Text)
			}
		}
		for _, p := range pictures.All() {
			if !shown[p.SVG] {
				t.Errorf("%s is shown in no README (a block <!-- picture: ... --> ... <!-- end of picture -->)", p.SVG)
			}
		}
	})

	for _, stage := range pictures.CPUStages {
		if cpuBurners[stage] {
			t.Run(stage, func(t *testing.T) { requireCPUPicture(t, stage, -1) })
			continue
		}
		t.Run(stage+" now", func(t *testing.T) {
			t.Parallel()
			if !CPUSupported {
				requireCPUPicture(t, stage, -1)
				t.Skip("CPU use is not measured live on this system")
			}
			requireCPUPicture(t, stage, -1)
			s := StartServer(t, stage)
			s.DialClients(t, 1)
			expectAsleep(t, s, 500*time.Millisecond) // and it sleeps now, as its picture shows
		})
	}
}

// cpuBurners are the stages whose loop polls: their pictures show a core burnt while idle.
var cpuBurners = map[string]bool{"stage3-nonblocking": true, "stage4-broadcast": true}

// requireCPUPicture fails unless stage's CPU data file says what the stage does while idle,
// with no client and with one client silent: most of a core for a polling loop (at least
// half, as checkBurnsCPU asks), under 2% for a loop that sleeps (as the idle-cpu check
// asks). live is the share of a core measured now while the stage is idle, or -1 for none;
// it must fall on the same side.
func requireCPUPicture(t *testing.T, stage string, live float64) {
	t.Helper()
	root := RootDir(t)
	path := filepath.Join(root, pictures.CPUFile(stage))
	d, err := chart.ReadData(path)
	require.NoError(t, err)
	run, err := pictures.ReadCPURun(d)
	require.NoError(t, err)
	require.Equal(t, stage, run.Stage, "%s names the wrong stage", path)
	burns := cpuBurners[stage]
	says := func(use float64) bool {
		if burns {
			return use >= 0.5
		}
		return use < 0.02
	}
	claim := "sleeps (under 2% of a core)"
	if burns {
		claim = "burns a core (at least half of one)"
	}
	for _, phase := range []string{pictures.PhaseNoClient, pictures.PhaseSilent} {
		mean := run.Mean(phase)
		require.True(t, says(mean), "%s: the picture should show that %s %s while idle, but its data file says %.1f%% of a core with %s (measured %s)",
			path, stage, claim, mean*100, phase, run.Date)
	}
	if live >= 0 {
		require.True(t, says(live), "%s's picture shows that it %s while idle, but now, idle, it used %.1f%% of a core",
			stage, claim, live*100)
	}
}

// firstDifference says where two files first differ: the line, and a few characters of
// each around the first difference.
func firstDifference(want, got []byte) string {
	wantLines, gotLines := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range max(len(wantLines), len(gotLines)) {
		w, g := "", ""
		if i < len(wantLines) {
			w = wantLines[i]
		}
		if i < len(gotLines) {
			g = gotLines[i]
		}
		if w == g {
			continue
		}
		at := 0
		for at < min(len(w), len(g)) && w[at] == g[at] {
			at++
		}
		around := func(s string) string { return s[max(at-30, 0):min(at+30, len(s))] }
		return fmt.Sprintf("line %d, column %d: the data draws %q, the file has %q", i+1, at+1, around(w), around(g))
	}
	return "the same lines"
}
