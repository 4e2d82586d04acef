//go:build linux

package main

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The data file keeps each row's figures as the table prints them, marks a run whose
// generator was at its limit, and leaves out a run that failed (TestFanoutRun, in package
// pictures, draws such a file).
func TestChartData(t *testing.T) {
	b := &bench{rounds: 3, rows: []row{
		{workload: "flood N=10", size: 32, target: "stage5 epoll", res: result{delivered: 60e6, elapsed: time.Second, serverCPU: 600 * time.Millisecond, generatorCPU: time.Second}},
		{workload: "flood N=10", size: 32, target: "redis", res: result{delivered: 7e6, elapsed: time.Second, serverCPU: 800 * time.Millisecond, generatorCPU: 200 * time.Millisecond}},
		{workload: "flood N=10", size: 32, target: "nats-server", res: result{err: errors.New("stalled")}},
	}}
	began := time.Date(2026, 12, 6, 20, 5, 0, 0, time.UTC)
	run := b.chartRun(began, "a CPU, 2 CPUs", "go run ./harness/cmd/fanout -chart")
	require.Equal(t, "# what: the benchmark's throughput rows: deliveries a second, the server's CPU seconds per million deliveries, and whether the generator's core was full (then the rate is a lower bound)\n"+
		"# machine: a CPU, 2 CPUs\n# date: 2026-12-06 20:05 UTC\n# command: go run ./harness/cmd/fanout -chart\n# rounds: 3\n"+
		"workload\tsize\ttarget\tdeliveries_per_s\tcpu_s_per_million\tgenerator_saturated\n"+
		"flood N=10\t32\tstage5 epoll\t60000000\t0.0100\tyes\n"+
		"flood N=10\t32\tredis\t7000000\t0.1143\tno\n", string(run.Data().Bytes()))
}
