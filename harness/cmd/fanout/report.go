//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

type memoryRow struct {
	target  string
	perConn float64 // bytes
}

type idleRow struct {
	target string
	ticks  int64
}

// goals checks issue 5's goals against this run's figures: ratios to Redis measured on the
// same machine in the same run.
func (b *bench) goals() {
	fmt.Println("Goals (stage 5 against Redis, same machine, same run):")
	find := func(workload string, size int, target string) *result {
		for i := range b.rows {
			r := &b.rows[i]
			if r.workload == workload && r.size == size && r.target == target && r.res.err == nil {
				return &r.res
			}
		}
		return nil
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	printed := false
	for _, size := range b.sizes {
		redis := find("flood N=100", size, "redis")
		if redis == nil {
			continue
		}
		for _, goal := range []struct {
			target string
			ratio  float64
		}{{"stage5 epoll", 5}, {"stage5 select", 3}} {
			stage := find("flood N=100", size, goal.target)
			if stage == nil {
				continue
			}
			ratio := stage.deliveriesPerSecond() / redis.deliveriesPerSecond()
			note := ""
			if stage.generatorSaturated() {
				note = "; generator saturated: a lower bound"
			}
			fmt.Printf("  %-13s flood N=100, %d B: %5.2fx Redis's deliveries/s (goal >= %.0fx): %s%s\n",
				goal.target, size, ratio, goal.ratio, verdict(ratio >= goal.ratio), note)
			// What a delivery costs the server, which other work on the machine does not change.
			if mine, theirs := deliveriesPerCPUSecond(stage), deliveriesPerCPUSecond(redis); mine > 0 && theirs > 0 {
				fmt.Printf("  %-13s flood N=100, %d B: CPU per delivery %.2f of Redis's (goal <= 0.20): %s\n",
					goal.target, size, theirs/mine, verdict(theirs/mine <= 0.2))
			}
			printed = true
		}
	}
	for _, size := range b.sizes {
		for _, n := range []int{10, 100} {
			workload := fmt.Sprintf("paced %s/s N=%d", compact(b.pacedRate), n)
			redis := find(workload, size, "redis")
			if redis == nil {
				continue
			}
			for _, target := range []string{"stage5 epoll", "stage5 select"} {
				stage := find(workload, size, target)
				if stage == nil {
					continue
				}
				mine, theirs := stage.latency.quantile(0.99), redis.latency.quantile(0.99)
				fmt.Printf("  %-13s %s, %d B: p99 %v, Redis %v (goal: no worse): %s\n",
					target, workload, size, latency(mine), latency(theirs), verdict(mine <= theirs))
				printed = true
			}
		}
	}
	for _, m := range b.memoryRows {
		if strings.HasPrefix(m.target, "stage5") {
			fmt.Printf("  %-13s %.0f bytes of RSS per idle connection (goal <= 1024): %s\n", m.target, m.perConn, verdict(m.perConn <= 1024))
			printed = true
		}
	}
	for _, i := range b.idleRows {
		if strings.HasPrefix(i.target, "stage5") {
			fmt.Printf("  %-13s %d CPU ticks idle with %d connections over %v (goal 0): %s\n",
				i.target, i.ticks, b.idleConns, b.idleWindow, verdict(i.ticks == 0))
			printed = true
		}
	}
	if !printed {
		fmt.Println("  (not enough targets or workloads in this run to compare)")
	}
}

// deliveriesPerCPUSecond is what the server delivered for each second of CPU it used: unlike
// deliveries per second, it does not fall when other work on the machine takes the server's core.
func deliveriesPerCPUSecond(r *result) float64 {
	if r.serverCPU <= 0 {
		return 0
	}
	return float64(r.delivered) / r.serverCPU.Seconds()
}

// serverCPU is a process's user plus system CPU time so far, 0 if it cannot be read.
func serverCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	d, err := tester.CPUTime(pid)
	if err != nil {
		return 0
	}
	return d
}

func latency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// compact formats 100000 as "100k".
func compact(v float64) string {
	switch {
	case v >= 1e6 && v == float64(int64(v/1e6))*1e6:
		return fmt.Sprintf("%.0fM", v/1e6)
	case v >= 1e3 && v == float64(int64(v/1e3))*1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
