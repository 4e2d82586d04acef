package pictures

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
)

// CPUStages are the stages whose CPU over time is drawn: the two that poll, and the two that
// sleep in the kernel.
var CPUStages = []string{"stage3-nonblocking", "stage4-broadcast", "stage5-select", "stage6-hardened"}

// CPUFile is a stage's CPU data file, beside its picture (cpuSVG).
func CPUFile(stage string) string { return filepath.Join(Runs, stage+"-cpu.tsv") }

func cpuSVG(stage string) string { return filepath.Join(Runs, stage+"-cpu.svg") }

// The phases of a CPU run, in order.
const (
	PhaseNoClient  = "no client"
	PhaseSilent    = "one client, silent"
	PhaseLinesSent = "lines sent"
)

// CPURun is one stage's CPU use, sampled over a run in three phases: idle with no client,
// one client connected and silent, then a few lines sent by that client.
type CPURun struct {
	Stage   string
	Machine string  // the CPU model, the number of CPUs, the system
	Date    string  // when it was measured: "2026-12-06 20:05 UTC"
	Command string  // the command that measured it
	Load    string  // the machine's load average when the run began (/proc/loadavg), or ""
	Window  float64 // seconds each sample measures
	Samples []CPUSample
	LinesAt []float64 // seconds from the start, when each line was sent
}

// CPUSample is the CPU the server used over one short window.
type CPUSample struct {
	End   float64 // seconds from the start of the run to the end of the window
	Use   float64 // share of one core over the window: 1 is a whole core
	Phase string
}

// Data is the run as a data file.
func (r *CPURun) Data() *chart.Data {
	d := &chart.Data{Columns: []string{"time_s", "cpu_percent", "phase"}}
	d.AddFact("what", "CPU use of a server over time, one sample per row: the share of one core over the window that ends at time_s")
	d.AddFact("stage", r.Stage)
	d.AddFact("machine", r.Machine)
	d.AddFact("date", r.Date)
	d.AddFact("command", r.Command)
	d.AddFact("load average before", r.Load)
	d.AddFact("window (s)", strconv.FormatFloat(r.Window, 'f', -1, 64))
	var lines []string
	for _, at := range r.LinesAt {
		lines = append(lines, strconv.FormatFloat(at, 'f', 3, 64))
	}
	d.AddFact("lines sent at (s)", strings.Join(lines, " "))
	for _, s := range r.Samples {
		d.AddRow(strconv.FormatFloat(s.End, 'f', 3, 64), strconv.FormatFloat(s.Use*100, 'f', 2, 64), s.Phase)
	}
	return d
}

// ReadCPURun reads a stage's CPU data file.
func ReadCPURun(d *chart.Data) (*CPURun, error) {
	r := &CPURun{Stage: d.Fact("stage"), Machine: d.Fact("machine"), Date: d.Fact("date"), Command: d.Fact("command"),
		Load: d.Fact("load average before")}
	ends, err := d.Floats("time_s")
	if err != nil {
		return nil, err
	}
	uses, err := d.Floats("cpu_percent")
	if err != nil {
		return nil, err
	}
	phases, err := d.Strings("phase")
	if err != nil {
		return nil, err
	}
	for i := range ends {
		r.Samples = append(r.Samples, CPUSample{End: ends[i], Use: uses[i] / 100, Phase: phases[i]})
	}
	if r.Window, err = strconv.ParseFloat(d.Fact("window (s)"), 64); err != nil {
		return nil, fmt.Errorf("window (s): %q is not a number", d.Fact("window (s)"))
	}
	for _, field := range strings.Fields(d.Fact("lines sent at (s)")) {
		at, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return nil, fmt.Errorf("lines sent at: %q is not a number", field)
		}
		r.LinesAt = append(r.LinesAt, at)
	}
	if len(r.Samples) == 0 || r.Stage == "" || r.Machine == "" || len(r.Date) < 10 {
		return nil, fmt.Errorf("a CPU run needs samples, a stage, a machine and a date")
	}
	return r, nil
}

// Mean is the mean share of a core over the samples of phase: the CPU time of the phase
// divided by its length, since every window is about as long as the others. NaN if the run
// has no such phase.
func (r *CPURun) Mean(phase string) float64 {
	sum, n := 0.0, 0
	for _, s := range r.Samples {
		if s.Phase == phase {
			sum += s.Use
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// Peak is the highest sample of phase.
func (r *CPURun) Peak(phase string) float64 {
	peak := 0.0
	for _, s := range r.Samples {
		if s.Phase == phase {
			peak = math.Max(peak, s.Use)
		}
	}
	return peak
}

// bands are the run's phases as stretches of time.
func (r *CPURun) bands() []chart.Band {
	var bands []chart.Band
	start := 0.0
	for i, s := range r.Samples {
		if i == 0 || s.Phase != r.Samples[i-1].Phase {
			if i > 0 {
				bands[len(bands)-1].To = start
			}
			bands = append(bands, chart.Band{From: start, Label: s.Phase})
		}
		start = s.End
	}
	if len(bands) > 0 {
		bands[len(bands)-1].To = start
	}
	return bands
}

func (r *CPURun) points() []chart.Point {
	var points []chart.Point
	for _, s := range r.Samples {
		points = append(points, chart.Point{X: s.End, Y: s.Use * 100})
	}
	return points
}

func (r *CPURun) marks() []chart.Mark {
	var marks []chart.Mark
	for _, at := range r.LinesAt {
		marks = append(marks, chart.Mark{X: at, Label: "a line sent"})
	}
	return marks
}

// caption names the machine and the date, and how the figures were made.
func (r *CPURun) caption() []string {
	return []string{
		fmt.Sprintf("Measured %s on %s.", r.Date, r.Machine),
		fmt.Sprintf("The server's CPU time from /proc, every %.0f ms%s.", r.Window*1000, loadNote(r.Load)),
		"Redraw: " + RedrawCommand,
	}
}

// loadNote says how busy the machine was when a run began: a polling loop shares its core
// with whatever else runs, and its figure dips when that takes the core.
func loadNote(load string) string {
	if load == "" {
		return ""
	}
	return "; load average " + load + " at the start"
}

// RedrawCommand redraws every picture from its data file, measuring nothing.
const RedrawCommand = "go run ./harness/cmd/pictures -draw"

// percent formats a share of a core for a sentence: "99%", "0.3%", "0%".
func percent(use float64) string {
	switch {
	case use*100 >= 9.95:
		return fmt.Sprintf("%.0f%%", use*100)
	case use*100 >= 0.05:
		return fmt.Sprintf("%.1f%%", use*100)
	}
	return "0%"
}

// cpuText is the run's figures in one sentence. For a loop that sleeps, the busiest window
// shows that it woke for the lines; for one that spins, it would say only that the Go runtime
// has threads of its own.
func (r *CPURun) cpuText() string {
	text := fmt.Sprintf("%s used %s of a core with no client, %s with one client connected and silent, "+
		"and %s while that client sent %d lines (the mean of each phase",
		r.Stage, percent(r.Mean(PhaseNoClient)), percent(r.Mean(PhaseSilent)), percent(r.Mean(PhaseLinesSent)), len(r.LinesAt))
	if r.Mean(PhaseNoClient) < 0.1 {
		text += fmt.Sprintf("; %s in its busiest %.0f ms", percent(r.Peak(PhaseLinesSent)), r.Window*1000)
	}
	return text + ")."
}

func drawCPU(d *chart.Data) (Drawing, error) {
	r, err := ReadCPURun(d)
	if err != nil {
		return Drawing{}, err
	}
	text := r.cpuText()
	c := chart.Line{
		Title:   fmt.Sprintf("%s: CPU use, idle and then talking", r.Stage),
		Desc:    text,
		Caption: r.caption(),
		XLabel:  "time (s)",
		YLabel:  "CPU (% of one core)",
		YMax:    100,
		Series:  []chart.Series{{Name: r.Stage, Points: r.points()}},
		Bands:   r.bands(),
		Marks:   r.marks(),
	}
	return Drawing{SVG: c.SVG(), Title: c.Title, Measured: c.Caption[0], Text: text}, nil
}

// drawCPUStages draws the four stages' runs on one chart: the polling loops at the top, the
// sleeping ones at the bottom.
func drawCPUStages(in []*chart.Data) (Drawing, error) {
	var runs []*CPURun
	for i, d := range in {
		r, err := ReadCPURun(d)
		if err != nil {
			return Drawing{}, fmt.Errorf("%s: %w", CPUStages[i], err)
		}
		if r.Stage != CPUStages[i] {
			return Drawing{}, fmt.Errorf("%s's data file says it is %s's", CPUStages[i], r.Stage)
		}
		runs = append(runs, r)
	}
	var series []chart.Series
	var sentences []string
	for i, r := range runs {
		// The stages that behave alike are drawn on top of each other: one of each pair dashed.
		series = append(series, chart.Series{Name: r.Stage, Points: r.points(), Dashed: i%2 == 1})
		sentences = append(sentences, fmt.Sprintf("%s %s, %s and %s", r.Stage,
			percent(r.Mean(PhaseNoClient)), percent(r.Mean(PhaseSilent)), percent(r.Mean(PhaseLinesSent))))
	}
	text := "CPU used with no client, with one silent client, and while lines were sent (the mean " +
		"of each phase): " + strings.Join(sentences, "; ") + "."
	first := runs[0]
	caption := first.caption()
	for _, r := range runs[1:] {
		if r.Machine != first.Machine || r.Date[:10] != first.Date[:10] {
			caption[0] = fmt.Sprintf("Measured %s on %s; %s on %s.", first.Date, first.Machine, r.Date, r.Machine)
		}
	}
	c := chart.Line{
		Title:   "CPU use of stages 3 to 6, idle and then talking",
		Desc:    text,
		Caption: caption,
		XLabel:  "time (s)",
		YLabel:  "CPU (% of one core)",
		YMax:    100,
		Series:  series,
		Bands:   first.bands(),
		Marks:   first.marks(),
	}
	return Drawing{SVG: c.SVG(), Title: c.Title, Measured: c.Caption[0], Text: text}, nil
}
