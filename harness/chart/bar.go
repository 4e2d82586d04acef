package chart

import (
	"math"
)

// Bars is a grouped bar chart: one group per category along x (a workload), one bar per
// series in each group (a server), in the same colour in every group.
type Bars struct {
	Title   string
	Desc    string   // the text alternative: what the chart shows, with its figures
	Caption []string // lines under the chart: the machine, the date, the command
	XLabel  string   // what the groups are
	YLabel  string   // with its unit
	Groups  []string // the categories, left to right
	Series  []BarSeries
	// Marked names what a hatched bar means ("generator at its limit: a lower bound"); it is
	// the legend's last entry, also when no bar is marked, so that the reader knows.
	Marked string
	// Format writes a bar's value above it; nil writes no values.
	Format func(float64) string
}

// BarSeries is one colour of bars: a value per group, NaN where there is none.
type BarSeries struct {
	Name   string
	Values []float64
	Marked []bool // hatched bars, by group (may be shorter than Values)
}

// hatch is the pattern laid over a marked bar: pale stripes, which show on any bar colour.
const hatch = `<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
	`<line x1="0" y1="0" x2="0" y2="6" stroke="#ffffff" stroke-opacity="0.7" stroke-width="2.5"/></pattern>`

// SVG draws the chart.
func (c Bars) SVG() []byte {
	yMax := 0.0
	anyMarked := false
	for _, series := range c.Series {
		for i, v := range series.Values {
			if !math.IsNaN(v) {
				yMax = math.Max(yMax, v)
			}
			anyMarked = anyMarked || i < len(series.Marked) && series.Marked[i]
		}
	}
	yAxis := niceAxis(0, yMax*1.08) // room for the values above the bars
	defs := ""
	if anyMarked || c.Marked != "" {
		defs = hatch
	}
	var entries []legendEntry
	for i, series := range c.Series {
		entries = append(entries, legendEntry{name: series.Name, colour: Palette[i%len(Palette)], kind: "box"})
	}
	if c.Marked != "" {
		entries = append(entries, legendEntry{name: c.Marked, colour: "#8b949e", kind: "marked"})
	}
	var s svg
	p := s.begin(c.Title, c.Desc, defs, c.Caption, entries)
	y := func(v float64) float64 { return yAxis.scale(v, p.bottom, p.top) }
	s.yAxis(p, yAxis, c.YLabel)
	s.printf("<line class=\"axis\" x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(p.left), num(p.bottom), num(p.right), num(p.bottom))

	s.text((p.left+p.right)/2, p.bottom+38, "middle", "", c.XLabel)

	groupWidth := (p.right - p.left) / float64(max(len(c.Groups), 1))
	barWidth := groupWidth * 0.8 / float64(max(len(c.Series), 1))
	for g, group := range c.Groups {
		left := p.left + float64(g)*groupWidth + groupWidth*0.1
		s.text(left+groupWidth*0.4, p.bottom+18, "middle", "", group)
		for i, series := range c.Series {
			if g >= len(series.Values) || math.IsNaN(series.Values[g]) {
				continue
			}
			v := series.Values[g]
			x, top := left+float64(i)*barWidth, y(math.Min(v, yAxis.max))
			s.printf("<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"/>\n",
				num(x+1), num(top), num(barWidth-2), num(p.bottom-top), Palette[i%len(Palette)])
			marked := g < len(series.Marked) && series.Marked[g]
			if marked {
				s.printf("<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"url(#hatch)\"/>\n",
					num(x+1), num(top), num(barWidth-2), num(p.bottom-top))
			}
			if c.Format != nil {
				s.text(x+barWidth/2, top-4, "middle", "note", c.Format(v))
			}
		}
	}
	return s.close()
}
