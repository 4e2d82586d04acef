package chart

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Data is a chart's data file: a few lines of facts about the run ("# machine: ..."), then a
// table with a header line, its columns separated by tabs. It is plain text so that a
// reader can check a picture's figures with a pager, and a diff shows what a new run
// changed.
//
//	# what: CPU use of stage3-nonblocking
//	# machine: AMD EPYC 7B13, 2 CPUs, linux/amd64, Linux 6.18.1, go1.26.8
//	# date: 2026-12-06 20:05 UTC
//	time_s	cpu_percent	phase
//	0.1	99.7	idle, no client
type Data struct {
	Facts   []Fact
	Columns []string
	Rows    [][]string
}

// Fact is one "# name: value" line.
type Fact struct{ Name, Value string }

// Fact returns the value of the fact called name, or "" if there is none.
func (d *Data) Fact(name string) string {
	for _, f := range d.Facts {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// AddFact appends a fact.
func (d *Data) AddFact(name, value string) { d.Facts = append(d.Facts, Fact{name, value}) }

// AddRow appends a row, its values as written ("-" for a figure that was not measured).
func (d *Data) AddRow(values ...string) { d.Rows = append(d.Rows, values) }

// Bytes is the file's text.
func (d *Data) Bytes() []byte {
	var b bytes.Buffer
	for _, f := range d.Facts {
		fmt.Fprintf(&b, "# %s: %s\n", f.Name, f.Value)
	}
	b.WriteString(strings.Join(d.Columns, "\t") + "\n")
	for _, row := range d.Rows {
		b.WriteString(strings.Join(row, "\t") + "\n")
	}
	return b.Bytes()
}

// Parse reads a data file's text; every row must have as many values as the header has
// columns.
func Parse(text []byte) (*Data, error) {
	d := &Data{}
	for n, line := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#") && d.Columns == nil:
			name, value, ok := strings.Cut(strings.TrimPrefix(line, "# "), ":")
			if !ok {
				return nil, fmt.Errorf("line %d: want \"# name: value\", got %q", n+1, line)
			}
			d.AddFact(name, strings.TrimPrefix(value, " "))
		case d.Columns == nil:
			d.Columns = strings.Split(line, "\t")
		default:
			row := strings.Split(line, "\t")
			if len(row) != len(d.Columns) {
				return nil, fmt.Errorf("line %d: %d values for %d columns: %q", n+1, len(row), len(d.Columns), line)
			}
			d.Rows = append(d.Rows, row)
		}
	}
	if d.Columns == nil {
		return nil, fmt.Errorf("no header line")
	}
	return d, nil
}

// ReadData reads and parses the data file at path.
func ReadData(path string) (*Data, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// Floats reads the column called name as numbers; "-" is NaN, a figure that was not
// measured.
func (d *Data) Floats(name string) ([]float64, error) {
	values, err := d.Strings(name)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(values))
	for i, value := range values {
		if value == "-" {
			out[i] = math.NaN()
			continue
		}
		if out[i], err = strconv.ParseFloat(value, 64); err != nil {
			return nil, fmt.Errorf("row %d, column %s: %q is not a number", i+1, name, value)
		}
	}
	return out, nil
}

// Strings reads the column called name.
func (d *Data) Strings(name string) ([]string, error) {
	c := slices.Index(d.Columns, name)
	if c < 0 {
		return nil, fmt.Errorf("no column %q (columns: %s)", name, strings.Join(d.Columns, ", "))
	}
	out := make([]string, len(d.Rows))
	for i, row := range d.Rows {
		out[i] = row[c]
	}
	return out, nil
}
