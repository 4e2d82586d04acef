// Package pictures knows the repository's charts: where each SVG lives, the data file of a
// real run it is drawn from, and how it is drawn (with package chart). The command
// harness/cmd/pictures measures the stages' runs and redraws every picture (RedrawAll), as
// harness/cmd/fanout -chart does once it has written the benchmark's data file; a test in
// package harness checks that every SVG is what its data file draws.
package pictures

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// Runs is the folder of the stages' pictures and their data files. Not the stages' own
// folders: `diff -r` between two neighbouring stages must show that step's lesson, not two
// runs' samples. (The benchmark's pictures are beside the benchmark, FanoutFolder.)
const Runs = "harness/pictures/runs"

// FanoutFolder holds the benchmark (harness/cmd/fanout), its data file and its charts.
const FanoutFolder = "harness/cmd/fanout"

var FanoutFile = filepath.Join(FanoutFolder, "fanout.tsv")

// MaxSize is the most an SVG may weigh: a README's picture must load at once.
const MaxSize = 50 << 10

// Drawing is a picture drawn: the SVG, its title, the line that says when and where it was
// measured, and its text alternative for the README: the figures in a sentence or two (the
// SVG's description, <desc>, says the same), or a sentence and a table.
type Drawing struct {
	SVG      []byte
	Title    string
	Measured string // "Measured 2026-12-06 20:05 UTC on ..."
	Text     string
	Table    string // a Markdown table, or ""
}

// Picture is one SVG of the repository and the data files it is drawn from, by paths
// relative to the repository's root.
type Picture struct {
	SVG    string
	Inputs []string
	Draw   func(inputs []*chart.Data) (Drawing, error)
}

// All lists every picture, in the order the redraw command draws them.
func All() []Picture {
	var all []Picture
	for _, stage := range CPUStages {
		all = append(all, Picture{
			SVG:    cpuSVG(stage),
			Inputs: []string{CPUFile(stage)},
			Draw:   func(in []*chart.Data) (Drawing, error) { return drawCPU(in[0]) },
		})
	}
	var cpuFiles []string
	for _, stage := range CPUStages {
		cpuFiles = append(cpuFiles, CPUFile(stage))
	}
	all = append(all,
		Picture{SVG: filepath.Join(Runs, "stages-cpu.svg"), Inputs: cpuFiles, Draw: drawCPUStages},
		Picture{SVG: filepath.Join(Runs, FloodStage+"-flood-trips.svg"), Inputs: []string{FloodFile},
			Draw: func(in []*chart.Data) (Drawing, error) { return drawFlood(in[0], floodTrips) }},
		Picture{SVG: filepath.Join(Runs, FloodStage+"-flood-rate.svg"), Inputs: []string{FloodFile},
			Draw: func(in []*chart.Data) (Drawing, error) { return drawFlood(in[0], floodRate) }},
		Picture{SVG: filepath.Join(FanoutFolder, "fanout-rate.svg"), Inputs: []string{FanoutFile},
			Draw: func(in []*chart.Data) (Drawing, error) { return drawFanout(in[0], fanoutRate) }},
		Picture{SVG: filepath.Join(FanoutFolder, "fanout-cpu.svg"), Inputs: []string{FanoutFile},
			Draw: func(in []*chart.Data) (Drawing, error) { return drawFanout(in[0], fanoutCPU) }},
	)
	return all
}

// Render reads the picture's data files under root and draws it.
func (p Picture) Render(root string) (Drawing, error) {
	var inputs []*chart.Data
	for _, name := range p.Inputs {
		d, err := chart.ReadData(filepath.Join(root, name))
		if err != nil {
			return Drawing{}, err
		}
		inputs = append(inputs, d)
	}
	drawing, err := p.Draw(inputs)
	if err != nil {
		return Drawing{}, fmt.Errorf("%s: %w", p.SVG, err)
	}
	if len(drawing.SVG) > MaxSize {
		return Drawing{}, fmt.Errorf("%s: %d bytes, more than %d", p.SVG, len(drawing.SVG), MaxSize)
	}
	return drawing, nil
}

// Redraw draws the picture from its data files under root and writes the SVG if it changed.
// A picture whose data files are not all there is skipped, and said so: it has not been
// measured in this checkout.
func (p Picture) Redraw(root string) (drawing Drawing, written bool, err error) {
	for _, name := range p.Inputs {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			return Drawing{}, false, err
		}
	}
	drawing, err = p.Render(root)
	if err != nil {
		return Drawing{}, false, err
	}
	path := filepath.Join(root, p.SVG)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, drawing.SVG) {
		return drawing, false, nil
	}
	return drawing, true, os.WriteFile(path, drawing.SVG, 0o644)
}

// Write writes a data file, relative to root.
func Write(root, name string, d *chart.Data) error {
	return os.WriteFile(filepath.Join(root, name), d.Bytes(), 0o644)
}

// RedrawAll draws every picture whose data files exist under root, rewrites the text beside
// each in the READMEs that show it (the date, the machine and the figures), and says on out
// what it did.
func RedrawAll(root string, out io.Writer) error {
	failed := 0
	drawings := map[string]Drawing{}
	for _, p := range All() {
		drawing, written, err := p.Redraw(root)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Fprintf(out, "%s: not drawn, no data file yet (%s)\n", p.SVG, strings.Join(p.Inputs, ", "))
			continue
		case err != nil:
			fmt.Fprintf(out, "not drawn: %v\n", err)
			failed++
			continue
		}
		drawings[p.SVG] = drawing
		if written {
			fmt.Fprintf(out, "%s: drawn, %d bytes\n", p.SVG, len(drawing.SVG))
		} else {
			fmt.Fprintf(out, "%s: unchanged\n", p.SVG)
		}
	}

	// The READMEs' blocks of text beside the pictures say what the pictures now show.
	blocks, err := ReadmeBlocks(root)
	if err != nil {
		return err
	}
	var readmes []string
	for _, b := range blocks {
		if !slices.Contains(readmes, b.README) {
			readmes = append(readmes, b.README)
		}
	}
	wrap := func(text string) string { return tester.Wrap(text, "", "", 95) }
	for _, readme := range readmes {
		changed, err := UpdateReadme(root, readme, drawings, wrap)
		if err != nil {
			fmt.Fprintln(out, err)
			failed++
		} else if changed {
			fmt.Fprintf(out, "%s: the text beside its pictures rewritten\n", readme)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of the pictures or READMEs could not be drawn or written (above)", failed)
	}
	return nil
}
