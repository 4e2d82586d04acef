// Command pictures measures the runs that the READMEs' charts are drawn from, writes each
// run's data file beside its picture, and draws the pictures (package harness/pictures):
// the CPU of stages 3 to 6 over ten seconds, and stage 6's flood control with and without its
// budget. With -draw it measures nothing and redraws every picture from its data file, the
// fan-out benchmark's too (harness/cmd/fanout -chart writes that one's).
//
//	go run ./harness/cmd/pictures              # measure and draw (about a minute; Linux)
//	go run ./harness/cmd/pictures -only cpu    # the CPU runs only
//	go run ./harness/cmd/pictures -draw        # redraw every picture from its data file
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// measurements are the runs the command knows, by the name -only takes.
var measurements = []string{"cpu", "flood"}

func main() {
	cli.SetUsage("pictures", "pictures measures the runs the READMEs' charts are drawn from (the CPU of stages 3 to 6, stage 6's flood control), writes each run's data file beside its picture, and draws the pictures. With -draw it only redraws them from their data files.")
	draw := flag.Bool("draw", false, "measure nothing: redraw every picture from its data file")
	only := flag.String("only", "cpu,flood", "what to measure: cpu (stages 3 to 6), flood (stage 6)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "pictures: unexpected argument %q (see -h)\n", flag.Arg(0))
		os.Exit(2)
	}
	chosen := strings.Split(*only, ",")
	for _, name := range chosen {
		if !slices.Contains(measurements, name) {
			fmt.Fprintf(os.Stderr, "pictures: -only %q: want cpu, flood or both (cpu,flood)\n", name)
			os.Exit(2)
		}
	}
	root, err := harness.Root()
	if err != nil {
		cli.Fatal("%v", err)
	}
	if !*draw {
		// Ctrl-C kills the server being measured and deletes the programs built for it.
		cli.CleanUpOnSignal()
		err := measure(root, chosen)
		harness.RemoveBuilds()
		if err != nil {
			cli.Fatal("%v", err)
		}
	}
	if err := redraw(root); err != nil {
		cli.Fatal("%v", err)
	}
}

// measure runs what chosen names and then writes the data files, all at once: a run cut
// short by Ctrl-C or an error leaves the pictures as they were.
func measure(root string, chosen []string) error {
	date := time.Now().UTC().Format("2006-01-02 15:04 UTC")
	files := map[string]*chart.Data{}
	if slices.Contains(chosen, "cpu") {
		for _, stage := range pictures.CPUStages {
			fmt.Printf("measuring %s's CPU for %v...\n", stage, cpuRunLength)
			run, err := measureCPU(stage)
			if err != nil {
				return fmt.Errorf("%s: %w", stage, err)
			}
			run.Date = date
			files[pictures.CPUFile(stage)] = run.Data()
		}
	}
	if slices.Contains(chosen, "flood") {
		fmt.Printf("measuring %s with a flood, with its budget and without...\n", pictures.FloodStage)
		run, err := measureFlood()
		if err != nil {
			return fmt.Errorf("%s: %w", pictures.FloodStage, err)
		}
		run.Date = date
		files[pictures.FloodFile] = run.Data()
	}
	for name, d := range files {
		if err := pictures.Write(root, name, d); err != nil {
			return err
		}
	}
	return nil
}

// redraw draws every picture whose data files exist, and rewrites the text beside each in
// the READMEs that show it: the date, the machine and the figures.
func redraw(root string) error {
	failed := 0
	drawings := map[string]pictures.Drawing{}
	for _, p := range pictures.All() {
		drawing, written, err := p.Redraw(root)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fmt.Printf("%s: not drawn, no data file yet (%s)\n", p.SVG, strings.Join(p.Inputs, ", "))
			continue
		case err != nil:
			fmt.Printf("not drawn: %v\n", err)
			failed++
			continue
		}
		drawings[p.SVG] = drawing
		if written {
			fmt.Printf("%s: drawn, %d bytes\n", p.SVG, len(drawing.SVG))
		} else {
			fmt.Printf("%s: unchanged\n", p.SVG)
		}
	}

	// The READMEs' blocks of text beside the pictures say what the pictures now show.
	blocks, err := pictures.ReadmeBlocks(root)
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
		changed, err := pictures.UpdateReadme(root, readme, drawings, wrap)
		if err != nil {
			fmt.Println(err)
			failed++
		} else if changed {
			fmt.Printf("%s: the text beside its pictures rewritten\n", readme)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of the pictures or READMEs could not be drawn or written (above)", failed)
	}
	return nil
}
