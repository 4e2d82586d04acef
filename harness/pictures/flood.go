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
