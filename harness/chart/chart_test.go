package chart

import (
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// wellFormed fails unless svg parses as XML from start to end.
func wellFormed(t *testing.T, svg []byte) {
	t.Helper()
	decoder := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		_, err := decoder.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err, "%s", svg)
	}
}

func sample() Line {
	var points []Point
	for i := range 101 {
		points = append(points, Point{X: float64(i) / 10, Y: 50 + 50*math.Sin(float64(i)/7)})
	}
	return Line{
		Title:   "A <title> & more",
		Desc:    `the figures, "quoted"`,
		Caption: []string{"Measured today.", "Redraw: a command"},
		XLabel:  "time (s)", YLabel: "CPU (% of one core)",
		Series: []Series{{Name: "one", Points: points}, {Name: "two", Points: points[:50], Dashed: true}},
		Bands:  []Band{{From: 0, To: 3, Label: "no client"}, {From: 3, To: 10, Label: "one client"}},
		Marks:  []Mark{{X: 6.5, Label: "a line sent"}, {X: 7, Label: "a line sent"}},
	}
}

// A chart is the same bytes every time it is drawn, is well-formed, has its text
// alternative, no script, and the colours of both themes.
func TestLineChart(t *testing.T) {
	c := sample()
	svg := c.SVG()
	require.Equal(t, string(svg), string(c.SVG()), "drawn twice, the same bytes")
	wellFormed(t, svg)
	text := string(svg)
	require.Contains(t, text, `<title id="t">A &lt;title&gt; &amp; more</title>`)
	require.Contains(t, text, `<desc id="d">the figures, &quot;quoted&quot;</desc>`)
	require.Contains(t, text, "@media (prefers-color-scheme:dark)")
	require.NotContains(t, strings.ToLower(text), "<script")
	require.NotContains(t, text, "<rect width=\"100%\"", "the background stays transparent")
	require.Equal(t, 1, strings.Count(text, ">a line sent<"), "marks that share a label are labelled once")
	require.Contains(t, text, ">no client<")
	require.Contains(t, text, ">time (s)<")
	require.Contains(t, text, ">Redraw: a command<")
	require.Equal(t, 2, strings.Count(text, "<path "))
	require.Contains(t, text, `stroke-dasharray="6 4"/>`, "the second series is dashed")
}

// The axes map data onto the plot: 0 at the bottom left, the maxima at the top right.
func TestLineChartScale(t *testing.T) {
	c := Line{YMax: 100, Series: []Series{{Name: "s", Points: []Point{{0, 0}, {10, 100}}}}}
	text := string(c.SVG())
	require.Contains(t, text, `<path d="M70 322 L700 80"`)
	for _, tick := range []string{">0<", ">20<", ">100<", ">2<", ">10<"} {
		require.Contains(t, text, tick)
	}
	require.NotContains(t, text, ">120<")
}

// A NaN is a gap: the line stops and starts again, and a sample alone is a dot.
func TestLineChartGaps(t *testing.T) {
	nan := math.NaN()
	c := Line{Series: []Series{{Name: "s", Points: []Point{{0, 1}, {1, 2}, {2, nan}, {3, 1}, {4, nan}, {5, 2}, {6, 3}}}}}
	text := string(c.SVG())
	require.Equal(t, 2, strings.Count(text, "<path "))
	require.Equal(t, 1, strings.Count(text, "<circle "))
	require.NotContains(t, text, "NaN")
}

// Axes end at round numbers, with about five ticks, and a value a hair past a round number
// does not add a step.
func TestNiceAxis(t *testing.T) {
	for _, c := range []struct {
		high, max, step float64
		labels          []string
	}{
		{100, 100, 20, []string{"0", "20", "40", "60", "80", "100"}},
		{10.004, 10, 2, []string{"0", "2", "4", "6", "8", "10"}},
		{106, 125, 25, []string{"0", "25", "50", "75", "100", "125"}},
		{12, 12.5, 2.5, []string{"0.0", "2.5", "5.0", "7.5", "10.0", "12.5"}},
		{0.03, 0.03, 0.01, []string{"0.00", "0.01", "0.02", "0.03"}},
		{0, 1, 0.2, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
	} {
		a := niceAxis(0, c.high)
		require.InDelta(t, c.max, a.max, 1e-9, "high %v", c.high)
		require.InDelta(t, c.step, a.step, 1e-9, "high %v", c.high)
		var labels []string
		for _, v := range a.ticks() {
			labels = append(labels, a.label(v))
		}
		require.Equal(t, c.labels, labels, "high %v", c.high)
	}
}

// Bars: one colour per series in every group, a hatched bar where one is marked (and the
// pattern only then), values above the bars, and nothing drawn for a missing value.
func TestBarChart(t *testing.T) {
	c := Bars{
		Title: "Fan-out", Desc: "figures", Caption: []string{"Measured today."},
		XLabel: "receivers", YLabel: "deliveries per second (millions)",
		Groups: []string{"10", "100"},
		Series: []BarSeries{
			{Name: "a", Values: []float64{60, 75}, Marked: []bool{true, false}},
			{Name: "b", Values: []float64{7, math.NaN()}},
		},
		Marked: "generator at its limit",
		Format: func(v float64) string { return strings.TrimSuffix(num(v), ".0") },
	}
	svg := c.SVG()
	require.Equal(t, string(svg), string(c.SVG()))
	wellFormed(t, svg)
	text := string(svg)
	require.Equal(t, 1, strings.Count(text, `<pattern id="hatch"`))
	require.Equal(t, 1+1, strings.Count(text, `fill="url(#hatch)"`), "one marked bar and its legend entry")
	require.Equal(t, 1+2, strings.Count(text, `fill="`+Palette[0]+`"/>`), "series a's legend entry and its bar in both groups")
	require.Equal(t, 1+1, strings.Count(text, `fill="`+Palette[1]+`"`), "series b's one bar and its legend entry")
	for _, label := range []string{">60<", ">75<", ">7<", ">generator at its limit<", ">receivers<"} {
		require.Contains(t, text, label)
	}

	// Seven entries do not fit on one line: the legend takes two, the canvas grows by one, and
	// so does it for a third line of caption.
	for _, name := range []string{"stage 7", "goroutine relay", "Redis", "nats-server"} {
		c.Series = append(c.Series, BarSeries{Name: name, Values: []float64{1, 2}})
	}
	c.Caption = append(c.Caption, "two", "three")
	text = string(c.SVG())
	require.Contains(t, text, `height="432" viewBox="0 0 720 432"`)
	require.Contains(t, text, `y="62">generator at its limit</text>`, "on the legend's second line")

	c.Series[0].Marked = nil
	require.Equal(t, 1, strings.Count(string(c.SVG()), `fill="url(#hatch)"`), "the legend says what a hatch means, though no bar has one")
	c.Marked = ""
	require.NotContains(t, string(c.SVG()), "hatch", "no pattern when no bar is marked and the legend does not name it")
}

// A chart of a thousand points stays far under the 50 KB a README's picture may weigh.
func TestChartSize(t *testing.T) {
	var points []Point
	for i := range 1000 {
		points = append(points, Point{X: float64(i) / 100, Y: float64(i % 97)})
	}
	c := Line{Title: "t", Series: []Series{{Name: "a", Points: points}, {Name: "b", Points: points}}}
	require.Less(t, len(c.SVG()), 50<<10)
}

// A data file reads back as it was written; a row with too few values is an error that says
// where.
func TestData(t *testing.T) {
	d := &Data{Columns: []string{"time_s", "cpu_percent", "phase"}}
	d.AddFact("machine", "a CPU: 2 cores")
	d.AddFact("nothing", "")
	d.AddRow("0.1", "99.5", "no client")
	d.AddRow("0.2", "-", "no client")
	text := d.Bytes()
	require.Equal(t, "# machine: a CPU: 2 cores\n# nothing: \ntime_s\tcpu_percent\tphase\n0.1\t99.5\tno client\n0.2\t-\tno client\n", string(text))
	back, err := Parse(text)
	require.NoError(t, err)
	require.Equal(t, d, back)
	require.Equal(t, "a CPU: 2 cores", back.Fact("machine"))
	uses, err := back.Floats("cpu_percent")
	require.NoError(t, err)
	require.Equal(t, 99.5, uses[0])
	require.True(t, math.IsNaN(uses[1]))
	_, err = back.Floats("phase")
	require.ErrorContains(t, err, `"no client" is not a number`)
	_, err = back.Floats("nope")
	require.ErrorContains(t, err, "no column")

	_, err = Parse([]byte("a\tb\n1\n"))
	require.ErrorContains(t, err, "line 2: 1 values for 2 columns")
	_, err = Parse([]byte("# no colon\na\n"))
	require.ErrorContains(t, err, "line 1")
}
