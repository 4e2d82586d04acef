package pictures

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
)

// FanoutFolder holds the benchmark (harness/cmd/fanout), its data file and its charts.
const FanoutFolder = "harness/cmd/fanout"

var FanoutFile = filepath.Join(FanoutFolder, "fanout.tsv")

// FanoutColumns are the columns of the benchmark's data file: one row per workload, line
// size and server.
var FanoutColumns = []string{"workload", "size", "target", "deliveries_per_s", "cpu_s_per_million", "generator_saturated"}

// The two fan-out pictures.
const (
	fanoutRate = "rate"
	fanoutCPU  = "cpu"
)

// fanoutRow is one row of the data file.
type fanoutRow struct {
	workload, target string
	size             int
	rate, cpu        float64
	saturated        bool
}

func readFanout(d *chart.Data) ([]fanoutRow, error) {
	workloads, err1 := d.Strings("workload")
	sizes, err2 := d.Floats("size")
	targets, err3 := d.Strings("target")
	rates, err4 := d.Floats("deliveries_per_s")
	cpus, err5 := d.Floats("cpu_s_per_million")
	saturated, err6 := d.Strings("generator_saturated")
	for _, err := range []error{err1, err2, err3, err4, err5, err6} {
		if err != nil {
			return nil, err
		}
	}
	var rows []fanoutRow
	for i := range workloads {
		rows = append(rows, fanoutRow{workload: workloads[i], target: targets[i], size: int(sizes[i]),
			rate: rates[i], cpu: cpus[i], saturated: saturated[i] == "yes"})
	}
	if len(rows) == 0 || d.Fact("machine") == "" || len(d.Fact("date")) < 10 {
		return nil, fmt.Errorf("the benchmark's data needs rows, a machine and a date")
	}
	return rows, nil
}

// floodWorkloads are the workloads drawn, in the benchmark's names, and as the chart labels
// them.
var floodWorkloads = []struct{ name, label string }{
	{"flood N=10", "10 receivers"},
	{"flood N=100", "100 receivers"},
	{"flood N=1000", "1000 receivers"},
	{"flood N=100 P=4", "100, 4 senders"},
}

// fanoutNames are the benchmark's target names as a reader knows them.
var fanoutNames = map[string]string{
	"stage5 select": "stage 5, select", "stage5 epoll": "stage 5, epoll", "stage7 epoll": "stage 7",
	"gorelay": "goroutine relay", "redis": "Redis", "nats-server": "nats-server",
}

func fanoutName(target string) string {
	if name, ok := fanoutNames[target]; ok {
		return name
	}
	return target
}

func drawFanout(d *chart.Data, which string) (Drawing, error) {
	rows, err := readFanout(d)
	if err != nil {
		return Drawing{}, err
	}
	// The smallest line size: the one the README's table is about.
	size := rows[0].size
	var targets []string
	for _, r := range rows {
		size = min(size, r.size)
		if !slices.Contains(targets, r.target) {
			targets = append(targets, r.target)
		}
	}
	var groups []string
	var workloads []string
	for _, w := range floodWorkloads {
		if slices.ContainsFunc(rows, func(r fanoutRow) bool { return r.workload == w.name && r.size == size }) {
			groups = append(groups, w.label)
			workloads = append(workloads, w.name)
		}
	}
	if len(groups) == 0 {
		return Drawing{}, fmt.Errorf("no flood workload at %d bytes in the data", size)
	}
	// The figures three ways: bars, a sentence per server for the SVG's description, and a
	// table for the README.
	var series []chart.BarSeries
	var sentences []string
	table := "| server | " + strings.Join(groups, " | ") + " |\n| --- |" + strings.Repeat(" ---: |", len(groups)) + "\n"
	for _, target := range targets {
		s := chart.BarSeries{Name: fanoutName(target)}
		var figures, cells []string
		for g, w := range workloads {
			i := slices.IndexFunc(rows, func(r fanoutRow) bool { return r.workload == w && r.size == size && r.target == target })
			if i < 0 {
				s.Values, s.Marked = append(s.Values, math.NaN()), append(s.Marked, false)
				cells = append(cells, "-")
				continue
			}
			r := rows[i]
			v, cell := r.rate/1e6, fmt.Sprintf("%.1f M", r.rate/1e6)
			if which == fanoutCPU {
				v, cell = r.cpu, fmt.Sprintf("%.3f", r.cpu)
			}
			marked := r.saturated && which == fanoutRate
			figure := groups[g] + " " + cell
			if marked {
				figure += " (generator at its limit)"
				cell += "*"
			}
			s.Values, s.Marked = append(s.Values, v), append(s.Marked, marked)
			figures, cells = append(figures, figure), append(cells, cell)
		}
		series = append(series, s)
		sentences = append(sentences, s.Name+": "+strings.Join(figures, ", "))
		table += "| " + s.Name + " | " + strings.Join(cells, " | ") + " |\n"
	}

	caption := []string{
		fmt.Sprintf("Measured %s on %s.", d.Fact("date"), d.Fact("machine")),
		fmt.Sprintf("%s: %d-byte lines, the best of %s round(s) each.", d.Fact("command"), size, d.Fact("rounds")),
		"Redraw: " + RedrawCommand,
	}
	c := chart.Bars{
		Caption: caption,
		XLabel:  "flood: 1 sender (or 4) to N receivers",
		Groups:  groups,
		Series:  series,
	}
	var text string
	if which == fanoutRate {
		c.Title = "Fan-out: lines delivered per second"
		c.YLabel = "deliveries per second (millions)"
		c.Marked = "generator at its limit"
		if !slices.ContainsFunc(rows, func(r fanoutRow) bool { return r.saturated && r.size == size && slices.Contains(workloads, r.workload) }) {
			c.Marked += " (no run here)"
		}
		c.Format = func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
		c.Desc = "Deliveries per second, flooded, " + strconv.Itoa(size) + "-byte lines. " +
			strings.Join(sentences, ". ") + ". Where the generator was at its limit, the figure is a lower bound."
		text = fmt.Sprintf("Deliveries per second, flooded with %d-byte lines, by number of receivers; "+
			"`*` marks a run whose generator was at its limit, so that the figure is a lower bound:", size)
	} else {
		c.Title = "Fan-out: the server's CPU per delivery"
		c.YLabel = "server CPU seconds per million deliveries"
		c.Desc = "Server CPU seconds per million deliveries, flooded, " + strconv.Itoa(size) + "-byte lines. " +
			strings.Join(sentences, ". ") + "."
		text = fmt.Sprintf("The server's CPU seconds per million deliveries, flooded with %d-byte lines, "+
			"by number of receivers:", size)
	}
	return Drawing{SVG: c.SVG(), Title: c.Title, Measured: c.Caption[0], Text: text, Table: table}, nil
}
