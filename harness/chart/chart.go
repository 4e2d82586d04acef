// Package chart draws the repository's charts as small, self-contained SVG files: line charts
// over time and grouped bar charts, with a title, axis labels with their units, a legend and a
// caption naming the machine and the date.
//
// It is a writer of our own, not a plotting library: the root module keeps its three
// dependencies, and the same data always gives the same bytes (no clock, no random ids, no
// map order, numbers formatted one way), so a test can redraw a picture from its data file
// and compare. The files have no scripts and no fonts or images of their own. They read on
// GitHub's light and dark themes alike: the background is transparent, text and axes take
// their colours from a <style> that follows prefers-color-scheme, and the series use
// mid-tone colours that stand out on white and on near-black.
package chart

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The canvas, in SVG user units (pixels at 100%). GitHub scales an image down to the
// column's width, so the text is sized for 720 wide.
const (
	Width  = 720
	Height = 400
)

// Palette is the series colours, in order: mid-tones with enough contrast on a white page
// and on GitHub's dark one (#0d1117).
var Palette = []string{"#3b82f6", "#f97316", "#a855f7", "#14b8a6", "#e11d48", "#84cc16", "#eab308"}

// style is shared by every chart: text and axes dark on the light theme, light on the dark.
const style = `text{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;font-size:13px;fill:#1f2328}
.title{font-size:15px;font-weight:600}
.caption,.note{font-size:11px;fill:#59636e}
.axis{stroke:#59636e;stroke-width:1}
.grid{stroke:#59636e;stroke-opacity:0.25;stroke-width:1}
.band{fill:#8b949e;fill-opacity:0.14}
.mark{stroke:#59636e;stroke-width:1;stroke-dasharray:3 3}
@media (prefers-color-scheme:dark){text{fill:#e6edf3}.caption,.note{fill:#9198a1}.axis{stroke:#9198a1}.grid{stroke:#9198a1}.mark{stroke:#9198a1}}`

// The plot's margins inside the canvas: the title and legend above, the tick labels, the
// axis label and the caption below.
const (
	marginLeft   = 70
	marginRight  = 20
	marginTop    = 62
	marginBottom = 78
)

// svg builds one document. Everything is written in order, so equal input gives equal bytes.
type svg struct {
	b strings.Builder
}

func (s *svg) printf(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

// begin writes the header, the text alternative (title and desc, for screen readers and for
// browsers that show a tooltip), the style, the title, the legend and the caption, and
// returns the rectangle left for the data. A legend too wide for one line takes two, and a
// caption of more than two lines makes the canvas taller: the plot keeps its size.
func (s *svg) begin(title, desc, defs string, caption []string, entries []legendEntry) plot {
	rows := legendRows(entries)
	extra := 18*float64(max(len(rows)-1, 0)) + 14*float64(max(len(caption)-2, 0))
	height := Height + extra
	s.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%s" viewBox="0 0 %d %s" role="img" aria-labelledby="t d">`+"\n",
		Width, num(height), Width, num(height))
	s.printf("<title id=\"t\">%s</title>\n<desc id=\"d\">%s</desc>\n", escape(title), escape(desc))
	s.printf("<style>\n%s\n</style>\n", style)
	if defs != "" {
		s.printf("<defs>%s</defs>\n", defs)
	}
	s.text(marginLeft, 22, "start", "title", title)
	for i, row := range rows {
		s.legend(marginLeft, 44+18*float64(i), row)
	}
	for i, line := range caption {
		s.text(10, height-10-14*float64(len(caption)-1-i), "start", "caption", line)
	}
	shift := 18 * float64(max(len(rows)-1, 0))
	return plot{marginLeft, marginTop + shift, Width - marginRight, Height - marginBottom + shift}
}

// text writes a line of text at x, y; anchor is start, middle or end.
func (s *svg) text(x, y float64, anchor, class, text string) {
	attrs := ""
	if anchor != "start" {
		attrs += ` text-anchor="` + anchor + `"`
	}
	if class != "" {
		attrs += ` class="` + class + `"`
	}
	s.printf("<text x=\"%s\" y=\"%s\"%s>%s</text>\n", num(x), num(y), attrs, escape(text))
}

// legendRows splits the legend's entries into lines that fit above the plot.
func legendRows(entries []legendEntry) [][]legendEntry {
	var rows [][]legendEntry
	x := float64(marginLeft)
	for _, e := range entries {
		if len(rows) == 0 || x+e.width() > Width-marginRight {
			rows, x = append(rows, nil), marginLeft
		}
		rows[len(rows)-1] = append(rows[len(rows)-1], e)
		x += e.width()
	}
	return rows
}

// legend writes one line of the legend, left to right from x.
func (s *svg) legend(x, y float64, entries []legendEntry) {
	for _, e := range entries {
		switch e.kind {
		case "line":
			dash := ""
			if e.dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			s.printf("<line x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n",
				num(x), num(y-4), num(x+20), num(y-4), e.colour, dash)
		default:
			s.printf("<rect x=\"%s\" y=\"%s\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", num(x+4), num(y-10), e.colour)
			if e.kind == "marked" {
				s.printf("<rect x=\"%s\" y=\"%s\" width=\"12\" height=\"12\" fill=\"url(#hatch)\"/>\n", num(x+4), num(y-10))
			}
		}
		s.text(x+26, y, "start", "", e.name)
		x += e.width()
	}
}

type legendEntry struct {
	name, colour, kind string // kind: line, box, or marked (a box hatched)
	dashed             bool
}

// width is the room the entry takes: its sample, its name, and a gap.
func (e legendEntry) width() float64 { return 26 + textWidth(e.name) + 18 }

func (s *svg) close() []byte {
	s.b.WriteString("</svg>\n")
	return []byte(s.b.String())
}

// textWidth estimates the width of text at 13px: the layout needs no more than that.
func textWidth(text string) float64 { return 7.2 * float64(len([]rune(text))) }

// escape makes text safe inside an element or an attribute.
func escape(text string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(text)
}

// num formats a coordinate: at most one decimal, no trailing ".0", so that the output is the
// same on every machine and small.
func num(v float64) string {
	v = math.Round(v*10) / 10
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// axis is a linear scale from 0 (or Min) to a round maximum, with its ticks.
type axis struct {
	min, max float64
	step     float64
}

// niceAxis returns an axis from low to at least high, with about five ticks at 1, 2 or 5
// times a power of ten.
func niceAxis(low, high float64) axis {
	if high <= low {
		high = low + 1
	}
	raw := (high - low) / 5 * 0.99 // a hair past a round number (10.004) stays on it
	power := math.Pow(10, math.Floor(math.Log10(raw)))
	step := power * 10
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*power >= raw {
			step = m * power
			break
		}
	}
	// Nor does it stretch the axis by a whole step.
	return axis{min: math.Floor(low/step) * step, max: math.Ceil(high/step-0.01) * step, step: step}
}

// ticks are the values at which the axis is labelled.
func (a axis) ticks() []float64 {
	var out []float64
	n := int(math.Round((a.max - a.min) / a.step))
	for i := 0; i <= n; i++ {
		out = append(out, a.min+float64(i)*a.step)
	}
	return out
}

// label formats a tick with as many decimals as the step needs.
func (a axis) label(v float64) string {
	decimals := 0
	for step := a.step; step < 1-1e-9 && decimals < 6; step *= 10 {
		decimals++
	}
	if a.step == 2.5*math.Pow(10, math.Floor(math.Log10(a.step))) && a.step < 10 {
		decimals++
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// scale maps v from the axis onto the pixels from..to.
func (a axis) scale(v, from, to float64) float64 {
	return from + (v-a.min)/(a.max-a.min)*(to-from)
}

// plot is the rectangle the data is drawn in.
type plot struct{ left, top, right, bottom float64 }

// yAxis draws the horizontal grid lines, the tick labels and the rotated axis label.
func (s *svg) yAxis(p plot, a axis, label string) {
	for _, v := range a.ticks() {
		y := a.scale(v, p.bottom, p.top)
		s.printf("<line class=\"grid\" x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(p.left), num(y), num(p.right), num(y))
		s.text(p.left-8, y+4, "end", "", a.label(v))
	}
	s.printf("<line class=\"axis\" x1=\"%s\" y1=\"%s\" x2=\"%s\" y2=\"%s\"/>\n", num(p.left), num(p.top), num(p.left), num(p.bottom))
	x, y := 18.0, (p.top+p.bottom)/2
	s.printf("<text x=\"%s\" y=\"%s\" text-anchor=\"middle\" transform=\"rotate(-90 %s %s)\">%s</text>\n",
		num(x), num(y), num(x), num(y), escape(label))
}
