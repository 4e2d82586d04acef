//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// writeChart writes the run's throughput figures to fanout.tsv beside this command, and
// draws the charts of its README from that file (package harness/pictures draws them, so
// that `go run ./harness/cmd/pictures -draw` and the test of the pictures draw the same).
func (b *bench) writeChart(began time.Time) error {
	root, err := harness.Root()
	if err != nil {
		return err
	}
	d := b.chartData(began, tester.Machine(), strings.Join(append([]string{"go run ./harness/cmd/fanout"}, os.Args[1:]...), " "))
	if err := pictures.Write(root, pictures.FanoutFile, d); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", pictures.FanoutFile)
	for _, p := range pictures.All() {
		if !slices.Contains(p.Inputs, pictures.FanoutFile) {
			continue
		}
		if _, _, err := p.Redraw(root); err != nil {
			return err
		}
		fmt.Printf("drew %s\n", filepath.ToSlash(p.SVG))
	}
	return nil
}

// chartData is the data file of the run's throughput rows; a row that failed has no figures
// and is left out.
func (b *bench) chartData(began time.Time, machine, command string) *chart.Data {
	d := &chart.Data{Columns: pictures.FanoutColumns}
	d.AddFact("what", "the benchmark's throughput rows: deliveries a second, the server's CPU seconds per million "+
		"deliveries, and whether the generator's core was full (then the rate is a lower bound)")
	d.AddFact("machine", machine)
	d.AddFact("date", began.UTC().Format("2006-01-02 15:04 UTC"))
	d.AddFact("command", command)
	d.AddFact("rounds", strconv.Itoa(b.rounds))
	for _, r := range b.rows {
		if r.res.err != nil || r.res.delivered == 0 {
			continue
		}
		cpu := r.res.serverCPU.Seconds() / (float64(r.res.delivered) / 1e6)
		saturated := "no"
		if r.res.generatorSaturated() {
			saturated = "yes"
		}
		d.AddRow(r.workload, r.size, r.target, strconv.FormatFloat(r.res.deliveriesPerSecond(), 'f', 0, 64),
			strconv.FormatFloat(cpu, 'f', 4, 64), saturated)
	}
	return d
}
