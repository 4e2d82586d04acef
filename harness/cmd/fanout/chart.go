//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// writeChart writes the run's throughput figures to fanout.tsv beside this command, and
// redraws the pictures as `go run ./harness/cmd/pictures -draw` does: the charts of its
// README from that file, and the text beside them.
func (b *bench) writeChart(began time.Time) error {
	root, err := harness.Root()
	if err != nil {
		return err
	}
	run := b.chartRun(began, tester.Machine(), strings.Join(append([]string{"go run ./harness/cmd/fanout"}, os.Args[1:]...), " "))
	if err := pictures.Write(root, pictures.FanoutFile, run.Data()); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", pictures.FanoutFile)
	return pictures.RedrawAll(root, os.Stdout)
}

// chartRun is the run's throughput rows for the charts; a row that failed has no figures and
// is left out.
func (b *bench) chartRun(began time.Time, machine, command string) *pictures.FanoutRun {
	run := &pictures.FanoutRun{Machine: machine, Date: began.UTC().Format("2006-01-02 15:04 UTC"), Command: command, Rounds: b.rounds}
	for _, r := range b.rows {
		if r.res.err != nil || r.res.delivered == 0 {
			continue
		}
		run.Rows = append(run.Rows, pictures.FanoutRow{Workload: r.workload, Size: r.size, Target: r.target,
			Rate: r.res.deliveriesPerSecond(), CPU: r.res.serverCPU.Seconds() / (float64(r.res.delivered) / 1e6),
			Saturated: r.res.generatorSaturated()})
	}
	return run
}
