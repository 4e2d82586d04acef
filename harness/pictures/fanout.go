package pictures

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
)

// The two fan-out pictures.
const (
	fanoutRate = "rate"
	fanoutCPU  = "cpu"
)

// FanoutRun is the benchmark's throughput figures (harness/cmd/fanout -chart), one row per
// workload, line size and server.
type FanoutRun struct {
	Machine, Date, Command string
	Rounds                 int // each figure is the best of this many rounds
	Rows                   []FanoutRow
}

// FanoutRow is one workload, line size and server of the benchmark.
type FanoutRow struct {
	Workload, Target string
	Size             int     // bytes of a line, "\r\n" included
	Rate             float64 // deliveries a second
	CPU              float64 // the server's CPU seconds per million deliveries
	Saturated        bool    // the generator's core was full: Rate is a lower bound
}

// Data is the run as a data file, its figures as the benchmark's table prints them.
func (r *FanoutRun) Data() *chart.Data {
	d := &chart.Data{Columns: []string{"workload", "size", "target", "deliveries_per_s", "cpu_s_per_million", "generator_saturated"}}
	d.AddFact("what", "the benchmark's throughput rows: deliveries a second, the server's CPU seconds per million "+
		"deliveries, and whether the generator's core was full (then the rate is a lower bound)")
	d.AddFact("machine", r.Machine)
	d.AddFact("date", r.Date)
	d.AddFact("command", r.Command)
	d.AddFact("rounds", strconv.Itoa(r.Rounds))
	for _, row := range r.Rows {
		saturated := "no"
		if row.Saturated {
			saturated = "yes"
		}
		d.AddRow(row.Workload, strconv.Itoa(row.Size), row.Target, strconv.FormatFloat(row.Rate, 'f', 0, 64),
			strconv.FormatFloat(row.CPU, 'f', 4, 64), saturated)
	}
	return d
}

// ReadFanoutRun reads the benchmark's data file.
func ReadFanoutRun(d *chart.Data) (*FanoutRun, error) {
	r := &FanoutRun{Machine: d.Fact("machine"), Date: d.Fact("date"), Command: d.Fact("command")}
	rounds, err := strconv.Atoi(d.Fact("rounds"))
	workloads, err1 := d.Strings("workload")
	sizes, err2 := d.Floats("size")
	targets, err3 := d.Strings("target")
	rates, err4 := d.Floats("deliveries_per_s")
	cpus, err5 := d.Floats("cpu_s_per_million")
	saturated, err6 := d.Strings("generator_saturated")
	for _, err := range []error{err, err1, err2, err3, err4, err5, err6} {
		if err != nil {
			return nil, err
		}
	}
	r.Rounds = rounds
	for i := range workloads {
		r.Rows = append(r.Rows, FanoutRow{Workload: workloads[i], Target: targets[i], Size: int(sizes[i]),
			Rate: rates[i], CPU: cpus[i], Saturated: saturated[i] == "yes"})
	}
	if len(r.Rows) == 0 || r.Machine == "" || len(r.Date) < 10 {
		return nil, fmt.Errorf("the benchmark's data needs rows, a machine and a date")
	}
	return r, nil
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
	run, err := ReadFanoutRun(d)
	if err != nil {
		return Drawing{}, err
	}
	rows := run.Rows
	// The smallest line size: the one the README's table is about.
	size := rows[0].Size
	var targets []string
	for _, r := range rows {
		size = min(size, r.Size)
		if !slices.Contains(targets, r.Target) {
			targets = append(targets, r.Target)
		}
	}
	var groups []string
	var workloads []string
	for _, w := range floodWorkloads {
		if slices.ContainsFunc(rows, func(r FanoutRow) bool { return r.Workload == w.name && r.Size == size }) {
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
			i := slices.IndexFunc(rows, func(r FanoutRow) bool { return r.Workload == w && r.Size == size && r.Target == target })
			if i < 0 {
				s.Values, s.Marked = append(s.Values, math.NaN()), append(s.Marked, false)
				cells = append(cells, "-")
				continue
			}
			r := rows[i]
			v, cell := r.Rate/1e6, fmt.Sprintf("%.1f M", r.Rate/1e6)
			if which == fanoutCPU {
				v, cell = r.CPU, fmt.Sprintf("%.3f", r.CPU)
			}
			marked := r.Saturated && which == fanoutRate
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
		fmt.Sprintf("Measured %s on %s.", run.Date, run.Machine),
		fmt.Sprintf("%s: %d-byte lines, the best of %d round(s) each.", run.Command, size, run.Rounds),
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
		if !slices.ContainsFunc(rows, func(r FanoutRow) bool { return r.Saturated && r.Size == size && slices.Contains(workloads, r.Workload) }) {
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
