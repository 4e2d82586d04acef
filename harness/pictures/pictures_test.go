package pictures

import (
	"math"
	"strings"
	"testing"

	"github.com/go-chat-workshop/simple-chat-server/harness/chart"
	"github.com/stretchr/testify/require"
)

func cpuRun() *CPURun {
	r := &CPURun{Stage: "stage5-select", Machine: "a CPU, 2 CPUs, linux/amd64", Date: "2026-12-06 20:05 UTC",
		Command: "go run ./harness/cmd/pictures -only cpu", Load: "0.50 0.40 0.30", Window: 0.1, LinesAt: []float64{0.45}}
	for i, phase := range []string{PhaseNoClient, PhaseNoClient, PhaseSilent, PhaseSilent, PhaseLinesSent, PhaseLinesSent} {
		r.Samples = append(r.Samples, CPUSample{End: float64(i+1) / 10, Use: float64(i) / 100, Phase: phase})
	}
	return r
}

// A CPU run reads back from its data file as it was, and its phases' means are those of its
// samples.
func TestCPURun(t *testing.T) {
	r := cpuRun()
	d, err := chart.Parse(r.Data().Bytes())
	require.NoError(t, err)
	back, err := ReadCPURun(d)
	require.NoError(t, err)
	require.Equal(t, r, back)
	require.InDelta(t, 0.005, back.Mean(PhaseNoClient), 1e-9)
	require.InDelta(t, 0.025, back.Mean(PhaseSilent), 1e-9)
	require.InDelta(t, 0.05, back.Peak(PhaseLinesSent), 1e-9)
	require.True(t, math.IsNaN(back.Mean("no such phase")))
	require.Equal(t, []chart.Band{{From: 0, To: 0.2, Label: PhaseNoClient}, {From: 0.2, To: 0.4, Label: PhaseSilent}, {From: 0.4, To: 0.6, Label: PhaseLinesSent}}, back.bands())

	drawing, err := drawCPU(d)
	require.NoError(t, err)
	require.Equal(t, "stage5-select used 0.5% of a core with no client, 2.5% with one client connected and "+
		"silent, and 4.5% while that client sent 1 lines (the mean of each phase; 5.0% in its busiest 100 ms).", drawing.Text)
	require.Contains(t, string(drawing.SVG), "<desc id=\"d\">"+drawing.Text+"</desc>")
	require.Contains(t, string(drawing.SVG), "Measured 2026-12-06 20:05 UTC on a CPU, 2 CPUs, linux/amd64.")
	require.Contains(t, string(drawing.SVG), "every 100 ms; load average 0.50 0.40 0.30 at the start.<")

	d.Facts = d.Facts[:1]
	_, err = ReadCPURun(d)
	require.Error(t, err, "a run that does not name its stage, machine and date")
}

// A flood run reads back as it was; its text names both runs' figures.
func TestFloodRun(t *testing.T) {
	r := &FloodRun{Machine: "m", Date: "2026-12-06 20:05 UTC", Command: "c", Rate: 65536, FloodAt: 0.5,
		ReaderRate: 1024000, Window: 0.25, Dropped: map[string]float64{BudgetOff: 1}}
	for _, budget := range []string{BudgetOn, BudgetOff} {
		for i := range 6 {
			trip := 0.001
			if budget == BudgetOff {
				trip = float64(i) / 10
			}
			r.Samples = append(r.Samples, FloodSample{Budget: budget, End: float64(i+1) / 4, Reader: 98000, Trip: trip})
		}
	}
	r.Samples[11].Trip = math.NaN()
	d, err := chart.Parse(r.Data().Bytes())
	require.NoError(t, err)
	back, err := ReadFloodRun(d)
	require.NoError(t, err)
	require.Len(t, back.Samples, 12)
	require.True(t, math.IsNaN(back.Samples[11].Trip))
	back.Samples[11].Trip, r.Samples[11].Trip = 0, 0 // NaN equals nothing, not even NaN
	require.Equal(t, r, back)
	require.Equal(t, "With the budget (-max-rate 65536), once the flood began, a ping's round trip (the median "+
		"of each 0.25 s window) was 1.0 ms in a typical window and 1.0 ms in the worst. Without it (-max-rate 0), "+
		"a ping's round trip (the median of each 0.25 s window) was 300 ms in a typical window and 400 ms in the "+
		"worst.", back.floodText(floodTrips))
	require.Equal(t, "With the budget (-max-rate 65536), once the flood began, the reader received 98 kB/s in "+
		"a typical 0.25 s window (the median), and was never dropped. Without it (-max-rate 0), the reader "+
		"received 98 kB/s in a typical 0.25 s window (the median), until the server dropped it as not reading, "+
		"0.5 s after the flood began.",
		back.floodText(floodRate))
}

// The benchmark's figures read back as they were written, and its chart hatches the bar of a
// run whose generator was at its limit.
func TestFanoutRun(t *testing.T) {
	r := &FanoutRun{Machine: "a CPU, 2 CPUs", Date: "2026-12-06 20:05 UTC", Command: "go run ./harness/cmd/fanout -chart", Rounds: 3,
		Rows: []FanoutRow{
			{Workload: "flood N=10", Size: 32, Target: "stage5 epoll", Rate: 60e6, CPU: 0.01, Saturated: true},
			{Workload: "flood N=10", Size: 32, Target: "redis", Rate: 7e6, CPU: 0.1143},
		}}
	d, err := chart.Parse(r.Data().Bytes())
	require.NoError(t, err)
	back, err := ReadFanoutRun(d)
	require.NoError(t, err)
	require.Equal(t, r, back)

	drawing, err := drawFanout(d, fanoutRate)
	require.NoError(t, err)
	require.Equal(t, 1+1, strings.Count(string(drawing.SVG), "url(#hatch)"), "the bar at the limit, and the legend")
	require.Contains(t, string(drawing.SVG), "stage 5, epoll: 10 receivers 60.0 M (generator at its limit)")
	require.Equal(t, "| server | 10 receivers |\n| --- | ---: |\n| stage 5, epoll | 60.0 M* |\n| Redis | 7.0 M |\n", drawing.Table)
}
