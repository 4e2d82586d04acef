package chart

import (
	"math"
	"strings"
)

// Line is a chart of one or more series over a common x axis, usually time.
type Line struct {
	Title   string
	Desc    string   // the text alternative: what the chart shows, with its figures
	Caption []string // lines under the chart: the machine, the date, the command
	XLabel  string   // with its unit: "time (s)"
	YLabel  string
	YMax    float64 // the y axis runs from 0 to at least YMax (0: the largest y)
	Series  []Series
	Bands   []Band // stretches of x named at the top of the plot, such as a run's phases
	Marks   []Mark // moments drawn as dashed vertical lines, such as a line sent
}

// Series is one line of a Line chart.
type Series struct {
	Name   string
	Points []Point // in order of x; a NaN y breaks the line
	Dashed bool
}

// Point is one sample.
type Point struct{ X, Y float64 }

// Band shades x from From to To and names it at the top of the plot. Bands alternate shaded
// and clear, so that neighbours can be told apart.
type Band struct {
	From, To float64
	Label    string
}

// Mark is a moment on the x axis, drawn as a dashed vertical line with a short label.
type Mark struct {
	X     float64
	Label string
}

// SVG draws the chart.
func (c Line) SVG() []byte {
	xMax, yMax := 0.0, c.YMax
	for _, series := range c.Series {
		for _, p := range series.Points {
			xMax = math.Max(xMax, p.X)
			if !math.IsNaN(p.Y) {
				yMax = math.Max(yMax, p.Y)
			}
		}
	}
	xAxis, yAxis := niceAxis(0, xMax), niceAxis(0, yMax)
	var entries []legendEntry
	for i, series := range c.Series {
		entries = append(entries, legendEntry{name: series.Name, colour: Palette[i%len(Palette)], kind: "line", dashed: series.Dashed})
	}
	var s svg
	p := s.begin(c.Title, c.Desc, "", c.Caption, entries)
	p.top += 18 // room for the bands' names
	x := func(v float64) float64 { return xAxis.scale(v, p.left, p.right) }
	y := func(v float64) float64 { return yAxis.scale(v, p.bottom, p.top) }

	for i, band := range c.Bands {
		from, to := x(band.From), x(math.Min(band.To, xAxis.max))
		if i%2 == 0 {
			s.printf("<rect class=\"band\" x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\"/>\n",
				num(from), num(p.top-18), num(to-from), num(p.bottom-p.top+18))
		}
		s.text((from+to)/2, p.top-5, "middle", "note", band.Label)
	}
	s.yAxis(p, yAxis, c.YLabel)
	for _, v := range xAxis.ticks() {
		s.text(x(v), p.bottom+18, "middle", "", xAxis.label(v))
	}
	s.printf("<line class=\"axis\" x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(p.left), num(p.bottom), num(p.right), num(p.bottom))
	s.text((p.left+p.right)/2, p.bottom+38, "middle", "", c.XLabel)

	for _, m := range c.Marks {
		s.printf("<line class=\"mark\" x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(x(m.X)), num(p.top), num(x(m.X)), num(p.bottom))
	}
	// One label for marks that share it, at the first of them, so that five lines sent in a
	// row say "line sent" once.
	labelled := map[string]bool{}
	for _, m := range c.Marks {
		if m.Label != "" && !labelled[m.Label] {
			labelled[m.Label] = true
			s.text(x(m.X)+4, p.top+14, "start", "note", m.Label)
		}
	}

	for i, series := range c.Series {
		dash := ""
		if series.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		for _, run := range runs(series.Points) {
			if len(run) == 1 { // a sample alone, between two gaps: a dot
				s.printf("<circle cx=\"%s\" cy=\"%s\" r=\"3\" fill=\"%s\"/>\n",
					num(x(run[0].X)), num(y(math.Min(run[0].Y, yAxis.max))), Palette[i%len(Palette)])
				continue
			}
			var d strings.Builder
			for j, pt := range run {
				if j == 0 {
					d.WriteString("M")
				} else {
					d.WriteString(" L")
				}
				d.WriteString(num(x(pt.X)) + " " + num(y(math.Min(pt.Y, yAxis.max))))
			}
			s.printf("<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2.5\" stroke-linejoin=\"round\"%s/>\n",
				d.String(), Palette[i%len(Palette)], dash)
		}
	}
	return s.close()
}

// runs splits points at NaN values of y: a gap in the data is a gap in the line.
func runs(points []Point) [][]Point {
	var out [][]Point
	var current []Point
	for _, p := range points {
		if math.IsNaN(p.Y) {
			if len(current) > 0 {
				out = append(out, current)
			}
			current = nil
			continue
		}
		current = append(current, p)
	}
	if len(current) > 0 {
		out = append(out, current)
	}
	return out
}
