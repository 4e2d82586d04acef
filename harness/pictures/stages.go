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

// The stages' runs: the CPU of stages 3 to 6 over time, and stage 6's room in a flood.

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

// FloodStage is the stage whose flood control is drawn, and FloodFile its data file.
const FloodStage = "stage6-hardened"

var FloodFile = filepath.Join(Runs, FloodStage+"-flood.tsv")

// The two runs of a flood: the stage as shipped, and with flood control off.
const (
	BudgetOn  = "on"
	BudgetOff = "off"
)

// FloodRun is a room with a reader, a pair of clients playing ping-pong and a flooder, run
// twice: with the stage's budget and without (-max-rate 0). Each sample covers a short window.
type FloodRun struct {
	Machine, Date, Command string
	Load                   string  // the machine's load average when the run began, or ""
	Rate                   int     // the budget's -max-rate, bytes a second
	FloodAt                float64 // seconds from the start when the flooder starts
	ReaderRate             int     // how fast the reader reads, bytes a second
	Window                 float64 // seconds each sample covers
	Samples                []FloodSample
	Dropped                map[string]float64 // by budget: when the reader was dropped; absent if never
}

// FloodSample is one window of one run.
type FloodSample struct {
	Budget string  // BudgetOn or BudgetOff
	End    float64 // seconds from the start to the end of the window
	Reader float64 // bytes a second the reader received over the window
	Trip   float64 // the median round trip, in seconds, of the pings sent in the window; NaN if most were not answered
}

// Data is the run as a data file.
func (r *FloodRun) Data() *chart.Data {
	d := &chart.Data{Columns: []string{"budget", "time_s", "reader_kb_per_s", "round_trip_ms"}}
	d.AddFact("what", "stage 6 with a reader, a ping-pong pair and a flooder, with its flood budget on and off; "+
		"per window: the kB a second the reader received, and the median round trip of the pings sent in the window (- if most never came back)")
	d.AddFact("machine", r.Machine)
	d.AddFact("date", r.Date)
	d.AddFact("command", r.Command)
	d.AddFact("load average before", r.Load)
	d.AddFact("budget (bytes/s)", strconv.Itoa(r.Rate))
	d.AddFact("reader reads (bytes/s)", strconv.Itoa(r.ReaderRate))
	d.AddFact("flood starts at (s)", strconv.FormatFloat(r.FloodAt, 'f', 3, 64))
	d.AddFact("window (s)", strconv.FormatFloat(r.Window, 'f', -1, 64))
	for _, budget := range []string{BudgetOn, BudgetOff} {
		dropped := "never"
		if at, ok := r.Dropped[budget]; ok {
			dropped = strconv.FormatFloat(at, 'f', 3, 64)
		}
		d.AddFact("reader dropped, budget "+budget+" (s)", dropped)
	}
	for _, s := range r.Samples {
		trip := "-"
		if !math.IsNaN(s.Trip) {
			trip = strconv.FormatFloat(s.Trip*1000, 'f', 2, 64)
		}
		d.AddRow(s.Budget, strconv.FormatFloat(s.End, 'f', 3, 64), strconv.FormatFloat(s.Reader/1000, 'f', 1, 64), trip)
	}
	return d
}

// ReadFloodRun reads the flood's data file.
func ReadFloodRun(d *chart.Data) (*FloodRun, error) {
	r := &FloodRun{Machine: d.Fact("machine"), Date: d.Fact("date"), Command: d.Fact("command"),
		Load: d.Fact("load average before"), Dropped: map[string]float64{}}
	var err error
	number := func(fact string) float64 {
		v, e := strconv.ParseFloat(d.Fact(fact), 64)
		if e != nil && err == nil {
			err = fmt.Errorf("%s: %q is not a number", fact, d.Fact(fact))
		}
		return v
	}
	r.Rate, r.ReaderRate = int(number("budget (bytes/s)")), int(number("reader reads (bytes/s)"))
	r.FloodAt, r.Window = number("flood starts at (s)"), number("window (s)")
	for _, budget := range []string{BudgetOn, BudgetOff} {
		if fact := "reader dropped, budget " + budget + " (s)"; d.Fact(fact) != "never" {
			r.Dropped[budget] = number(fact)
		}
	}
	budgets, err1 := d.Strings("budget")
	ends, err2 := d.Floats("time_s")
	readers, err3 := d.Floats("reader_kb_per_s")
	trips, err4 := d.Floats("round_trip_ms")
	for _, e := range []error{err, err1, err2, err3, err4} {
		if e != nil {
			return nil, e
		}
	}
	for i := range budgets {
		if budgets[i] != BudgetOn && budgets[i] != BudgetOff {
			return nil, fmt.Errorf("row %d: budget %q, want on or off", i+1, budgets[i])
		}
		r.Samples = append(r.Samples, FloodSample{Budget: budgets[i], End: ends[i], Reader: readers[i] * 1000, Trip: trips[i] / 1000})
	}
	if len(r.Samples) == 0 || r.Machine == "" || len(r.Date) < 10 {
		return nil, fmt.Errorf("a flood run needs samples, a machine and a date")
	}
	return r, nil
}

// series is one budget's samples as points, the value chosen by pick.
func (r *FloodRun) series(budget string, pick func(FloodSample) float64) []chart.Point {
	var points []chart.Point
	for _, s := range r.Samples {
		if s.Budget == budget {
			points = append(points, chart.Point{X: s.End, Y: pick(s)})
		}
	}
	return points
}

// flooded are one budget's values, by pick, over the windows after the flood began,
// smallest first; for the reader, only those before it was dropped, if it was.
func (r *FloodRun) flooded(budget string, pick func(FloodSample) float64, reader bool) []float64 {
	until := math.Inf(1)
	if at, ok := r.Dropped[budget]; ok && reader {
		until = at
	}
	var values []float64
	for _, s := range r.Samples {
		if v := pick(s); s.Budget == budget && s.End > r.FloodAt && s.End <= until && !math.IsNaN(v) {
			values = append(values, v)
		}
	}
	slices.Sort(values)
	return values
}

// floodText is the figures of one of the pictures (floodTrips or floodRate), both runs, in
// a sentence each.
func (r *FloodRun) floodText(which string) string {
	var sentences []string
	for _, budget := range []string{BudgetOn, BudgetOff} {
		text := fmt.Sprintf("With the budget (-max-rate %d), once the flood began, ", r.Rate)
		if budget == BudgetOff {
			text = "Without it (-max-rate 0), "
		}
		window := strconv.FormatFloat(r.Window, 'f', -1, 64) + " s"
		if which == floodTrips {
			trips := r.flooded(budget, func(s FloodSample) float64 { return s.Trip }, false)
			if len(trips) == 0 {
				sentences = append(sentences, text+"no ping came back.")
				continue
			}
			sentences = append(sentences, text+fmt.Sprintf("a ping's round trip (the median of each %s window) was %s in a typical window and %s in the worst.",
				window, seconds(trips[len(trips)/2]), seconds(trips[len(trips)-1])))
			continue
		}
		reader := r.flooded(budget, func(s FloodSample) float64 { return s.Reader }, true)
		if len(reader) > 0 {
			text += fmt.Sprintf("the reader received %.0f kB/s in a typical %s window (the median)", reader[len(reader)/2]/1000, window)
		} else {
			text += "the reader received nothing"
		}
		if at, ok := r.Dropped[budget]; ok {
			text += fmt.Sprintf(", until the server dropped it as not reading, %.1f s after the flood began.", at-r.FloodAt)
		} else {
			text += ", and was never dropped."
		}
		sentences = append(sentences, text)
	}
	return strings.Join(sentences, " ")
}

// seconds formats a round trip: "1.2 ms", "340 ms", "1.4 s".
func seconds(v float64) string {
	switch {
	case v >= 1:
		return fmt.Sprintf("%.1f s", v)
	case v >= 0.01:
		return fmt.Sprintf("%.0f ms", v*1000)
	}
	return fmt.Sprintf("%.1f ms", v*1000)
}

// The two flood pictures.
const (
	floodTrips = "trips"
	floodRate  = "rate"
)

func drawFlood(d *chart.Data, which string) (Drawing, error) {
	r, err := ReadFloodRun(d)
	if err != nil {
		return Drawing{}, err
	}
	pick, title, label := func(s FloodSample) float64 { return s.Trip * 1000 },
		"stage6-hardened: a ping's round trip beside a flood", "median round trip (ms)"
	if which == floodRate {
		pick, title, label = func(s FloodSample) float64 { return s.Reader / 1000 },
			"stage6-hardened: what a reader receives beside a flood", "reader receives (kB/s)"
	}
	marks := []chart.Mark{{X: r.FloodAt, Label: "the flood begins"}}
	if at, ok := r.Dropped[BudgetOff]; ok {
		marks = append(marks, chart.Mark{X: at, Label: "reader dropped (budget off)"})
	}
	if at, ok := r.Dropped[BudgetOn]; ok {
		marks = append(marks, chart.Mark{X: at, Label: "reader dropped (budget on)"})
	}
	text := r.floodText(which)
	c := chart.Line{
		Title: title,
		Desc:  text,
		Caption: []string{
			fmt.Sprintf("Measured %s on %s.", r.Date, r.Machine),
			fmt.Sprintf("A reader taking %d kB/s, a ping every 20 ms%s.", r.ReaderRate/1000, loadNote(r.Load)),
			"Redraw: " + RedrawCommand,
		},
		XLabel: "time (s)",
		YLabel: label,
		Series: []chart.Series{
			{Name: fmt.Sprintf("budget on (-max-rate %d)", r.Rate), Points: r.series(BudgetOn, pick)},
			{Name: "budget off (-max-rate 0)", Points: r.series(BudgetOff, pick), Dashed: true},
		},
		Marks: marks,
	}
	return Drawing{SVG: c.SVG(), Title: c.Title, Measured: c.Caption[0], Text: text}, nil
}
