//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// bench is the whole benchmark: what to run and against which servers, and the rows it
// measured, for the goals and the charts.
type bench struct {
	targets       []target
	workloads     []string
	sizes         []int
	duration      time.Duration
	pacedDuration time.Duration
	pacedRate     float64
	memoryConns   int
	idleConns     int
	idleWindow    time.Duration
	windowBytes   int
	stall         time.Duration
	redisServer   string
	natsServer    string
	pin           bool
	rounds        int
	modules       string // where stage 8, a module of its own, is built

	rows       []row
	memoryRows []memoryRow
	idleRows   []idleRow
}

// row is one line of the throughput table.
type row struct {
	workload string
	size     int
	target   string
	res      result
	w        workload
}

func (b *bench) wants(workload string) bool {
	for _, w := range b.workloads {
		if w == workload {
			return true
		}
	}
	return false
}

func (b *bench) run() error {
	began := time.Now()
	b.header()
	var available []target
	for _, t := range b.targets {
		switch {
		case t.protocol == redisProtocol:
			if _, err := exec.LookPath(b.redisServer); err != nil {
				fmt.Printf("redis: skipped, %s is not installed (apt-get install redis-server, or brew install redis)\n", b.redisServer)
				continue
			}
		case t.protocol == natsProtocol:
			path, err := findNATS(b.natsServer)
			if err != nil {
				fmt.Printf("nats-server: skipped, %s is not installed (go install github.com/nats-io/nats-server/v2@v2.15.2, which needs Go 1.26)\n", b.natsServer)
				continue
			}
			b.natsServer = path
		default:
			if root, err := harness.Root(); err == nil {
				if _, err := os.Stat(filepath.Join(root, t.pkg)); err != nil {
					fmt.Printf("%s: skipped, there is no %s folder in this checkout\n", t.name, t.pkg)
					continue
				}
			}
			if _, err := b.build(t.pkg); err != nil {
				return err
			}
		}
		available = append(available, t)
	}
	b.targets = available
	fmt.Println()

	if b.wants("flood") || b.wants("senders") || b.wants("paced") {
		if err := b.throughput(); err != nil {
			return err
		}
	}
	if b.wants("memory") {
		if err := b.memory(); err != nil {
			return err
		}
	}
	if b.wants("idle") {
		if err := b.idle(); err != nil {
			return err
		}
	}
	if b.wants("bigline") || b.wants("stalled") {
		if err := b.broadcastMemory(); err != nil {
			return err
		}
	}
	b.goals()
	fmt.Printf("\nfinished in %v; load average %s\n", time.Since(began).Round(time.Second), tester.LoadAverage())
	return nil
}

func (b *bench) header() {
	fmt.Printf("fanout: relay benchmark, %s\n", time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Printf("machine: %s\n", tester.Machine())
	fmt.Printf("command: %s\n", strings.Join(append([]string{"fanout"}, os.Args[1:]...), " "))
	fmt.Printf("load average before: %s\n", tester.LoadAverage())
	fmt.Printf("flood control: stage 5 has none; off in stages 7 and 8 (%s), since the benchmark floods on purpose\n", strings.Join(noFloodControl, " "))
	if b.pin {
		if err := exec.Command("taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).Run(); err != nil {
			fmt.Printf("pinning: taskset failed (%v); nothing is pinned\n", err)
			b.pin = false
		} else {
			fmt.Println("pinning: each server started under taskset -c 0, this generator on CPU 1")
		}
	} else {
		fmt.Println("pinning: none (needs taskset and two CPUs); figures are noisier")
	}
}

// throughput runs every flood and paced workload against every target. All targets run at
// once, each asleep while another is measured, so that a change in the machine's load during
// the run spreads over all of them rather than landing on one.
func (b *bench) throughput() error {
	var servers []*server
	for _, t := range b.targets {
		s, err := b.start(t, 1100)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		servers = append(servers, s)
	}
	type spec struct {
		kind      string
		receivers int
		senders   int
		rate      float64
	}
	var specs []spec
	if b.wants("flood") {
		specs = append(specs, spec{"flood", 10, 1, 0}, spec{"flood", 100, 1, 0}, spec{"flood", 1000, 1, 0})
	}
	if b.wants("senders") {
		specs = append(specs, spec{"flood", 100, 4, 0})
	}
	if b.wants("paced") {
		specs = append(specs, spec{"paced", 10, 1, b.pacedRate}, spec{"paced", 100, 1, b.pacedRate})
	}
	fmt.Printf("Throughput and latency. Flood: each sender sends as fast as the slowest receiver allows (a window of\n")
	fmt.Printf("at most 256 KiB per receiver, %d MiB in all) for %v. Paced: %s deliveries/s for %v. Latency is\n",
		b.windowBytes>>20, b.duration, cli.Thousands(b.pacedRate), b.pacedDuration)
	fmt.Printf("from the time each message was scheduled to its arrival. CPU s/M: the server's CPU seconds per million\n")
	fmt.Printf("deliveries; srv CPU, gen CPU: the share of one core the server and this generator used during the run.\n")
	fmt.Printf("A flooded server below 100%% waited: for the generator (gen CPU near 100%%), or for its core, which other\n")
	fmt.Printf("work on the machine took in part; CPU s/M does not depend on that.\n")
	if b.rounds > 1 {
		fmt.Printf("Each figure is from the best of %d rounds (most deliveries/s for floods, lowest p99 when paced),\n", b.rounds)
		fmt.Printf("the rounds taken one after the other, so that a burst of other work on the machine spoils one at most.\n")
	}
	fmt.Println()

	type key struct {
		workload string
		size     int
		target   string
	}
	var order []key
	best := map[key]row{}
	failures := map[key][]string{}
	for round := range b.rounds {
		for _, sp := range specs {
			for _, size := range b.sizes {
				name := fmt.Sprintf("%s N=%d", sp.kind, sp.receivers)
				if sp.senders > 1 {
					name += fmt.Sprintf(" P=%d", sp.senders)
				}
				if sp.rate > 0 {
					name = fmt.Sprintf("paced %s/s N=%d", compact(sp.rate), sp.receivers)
				}
				for _, s := range servers {
					w := workload{
						addr: s.addr, senderAddr: s.senderAddr, protocol: s.protocol, receivers: sp.receivers, senders: sp.senders, size: size,
						rate: sp.rate, duration: b.duration, stall: b.stall, serverPID: s.pid(),
					}
					if sp.rate > 0 {
						w.duration = b.pacedDuration
					}
					w.window = floodWindow(w, b.windowBytes)
					res := run(w)
					if s.process.Exited() {
						return fmt.Errorf("%s exited during %s: %q", s.name, name, s.process.Stderr())
					}
					fmt.Fprintf(os.Stderr, "round %d/%d: %s\n", round+1, b.rounds, formatRow(name, size, s.name, res))
					k := key{name, size, s.name}
					if round == 0 {
						order = append(order, k)
					}
					if res.err != nil {
						failures[k] = append(failures[k], fmt.Sprintf("round %d: %v", round+1, res.err))
					} else if old, ok := best[k]; !ok || better(res, old.res, sp.rate > 0) {
						best[k] = row{workload: name, size: size, target: s.name, res: res, w: w}
					}
					b.settle(s, 0)
				}
			}
		}
	}
	for _, s := range servers {
		s.stop()
	}

	fmt.Printf("%-22s %4s  %-14s %13s %9s %9s %9s %8s %8s %8s\n",
		"workload", "size", "server", "deliveries/s", "p50", "p99", "p99.9", "CPU s/M", "srv CPU", "gen CPU")
	saturated := false
	for _, k := range order {
		r, ok := best[k]
		if !ok {
			fmt.Printf("%-22s %4d  %-14s failed in every round\n", k.workload, k.size, k.target)
			continue
		}
		b.rows = append(b.rows, r)
		fmt.Println(formatRow(k.workload, k.size, k.target, r.res))
		saturated = saturated || r.res.generatorSaturated()
	}
	if saturated {
		fmt.Println("* the generator used 90% of its core or more: that throughput is a lower bound, that latency an upper one.")
	}
	for _, k := range order {
		for _, f := range failures[k] {
			fmt.Printf("! %s, %d B, %s: %s\n", k.workload, k.size, k.target, f)
		}
	}
	fmt.Println()
	return nil
}

// better says whether a is a better sample than b of the same figure: more deliveries per
// second for a flood, a lower p99 for a paced run (where throughput is fixed).
func better(a, b result, paced bool) bool {
	if paced {
		return a.latency.quantile(0.99) < b.latency.quantile(0.99)
	}
	return a.deliveriesPerSecond() > b.deliveriesPerSecond()
}

// settle waits until the server has seen the last run's connections close, so that the next
// run does not pay for this one's teardown.
func (b *bench) settle(s *server, want int) {
	deadline := time.Now().Add(harness.Deadline)
	for time.Now().Before(deadline) {
		if n, err := s.connected(); err != nil || n <= want {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

func formatRow(workload string, size int, target string, r result) string {
	if r.err != nil {
		return fmt.Sprintf("%-22s %4d  %-14s failed: %v", workload, size, target, r.err)
	}
	share := func(d time.Duration) string { return fmt.Sprintf("%.0f%%", 100*float64(d)/float64(r.elapsed)) }
	generator := share(r.generatorCPU)
	if r.generatorSaturated() {
		generator += "*"
	}
	cpuPerMillion := "-"
	if r.delivered > 0 {
		cpuPerMillion = fmt.Sprintf("%.3f", r.serverCPU.Seconds()/(float64(r.delivered)/1e6))
	}
	return fmt.Sprintf("%-22s %4d  %-14s %13s %9s %9s %9s %8s %8s %8s",
		workload, size, target, cli.Thousands(r.deliveriesPerSecond()),
		latency(r.latency.quantile(0.5)), latency(r.latency.quantile(0.99)), latency(r.latency.quantile(0.999)),
		cpuPerMillion, share(r.serverCPU), generator)
}

// memory connects idle clients to a fresh server and divides the growth of its resident
// memory by their number.
func (b *bench) memory() error {
	fmt.Printf("Memory: resident memory of a fresh server before and after %s idle connections.\n\n", cli.Thousands(float64(b.memoryConns)))
	fmt.Printf("%-14s %12s %12s %16s\n", "server", "RSS before", "RSS after", "per connection")
	for _, t := range b.targets {
		if t.selectLimited() && b.memoryConns >= 1020 {
			fmt.Printf("%-14s %s\n", t.name, "-  (select cannot watch descriptors of 1024 or more; see stage5 epoll)")
			continue
		}
		s, err := b.start(t, b.memoryConns)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		time.Sleep(300 * time.Millisecond)
		before, err := tester.RSS(s.pid())
		if err != nil {
			return err
		}
		conns, err := b.dial(s, &net.Dialer{Timeout: harness.Deadline}, b.memoryConns, b.memoryConns)
		if err != nil {
			s.stop()
			return fmt.Errorf("%s: %w", t.name, err)
		}
		time.Sleep(500 * time.Millisecond)
		after, err := tester.RSS(s.pid())
		closeConns(conns)
		s.stop()
		if err != nil {
			return err
		}
		perConn := float64(after-before) / float64(b.memoryConns)
		fmt.Printf("%-14s %12s %12s %11.0f bytes\n", t.name, size(before), size(after), perConn)
		b.memoryRows = append(b.memoryRows, memoryRow{target: t.name, perConn: perConn})
	}
	fmt.Println()
	return nil
}

// idle counts each fresh server's CPU ticks (1/100 s) while clients are connected and silent.
// The servers are measured side by side over the same window: an idle one cannot disturb
// another.
func (b *bench) idle() error {
	fmt.Printf("Idle: CPU ticks (1/100 s) used in %v with %s idle connections.\n\n", b.idleWindow, cli.Thousands(float64(b.idleConns)))
	type idleServer struct {
		s     *server
		conns []net.Conn
		ticks int64
	}
	var servers []*idleServer
	defer func() {
		for _, is := range servers {
			closeConns(is.conns)
			is.s.stop()
		}
	}()
	for _, t := range b.targets {
		s, err := b.start(t, b.idleConns)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		is := &idleServer{s: s}
		servers = append(servers, is)
		if is.conns, err = b.dial(s, &net.Dialer{Timeout: harness.Deadline}, b.idleConns, b.idleConns); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	time.Sleep(time.Second) // let start-up work (the Go runtime's, Redis's) finish
	for _, is := range servers {
		ticks, err := tester.CPUTicks(is.s.pid())
		if err != nil {
			return err
		}
		is.ticks = ticks
	}
	time.Sleep(b.idleWindow)
	fmt.Printf("%-14s %6s\n", "server", "ticks")
	for _, is := range servers {
		ticks, err := tester.CPUTicks(is.s.pid())
		if err != nil {
			return err
		}
		fmt.Printf("%-14s %6d\n", is.s.name, ticks-is.ticks)
		b.idleRows = append(b.idleRows, idleRow{target: is.s.name, ticks: ticks - is.ticks})
	}
	fmt.Println()
	return nil
}
