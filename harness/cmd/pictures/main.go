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
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
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
	if err := pictures.RedrawAll(root, os.Stdout); err != nil {
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
