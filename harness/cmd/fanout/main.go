//go:build linux

// Command fanout measures how fast a chat relay fans lines out: stage 5 with select and with
// epoll, stage 7, an idiomatic goroutine-per-connection relay (harness/cmd/gorelay), Redis
// pub/sub and NATS, side by side on one machine in one run; on request, stage 8 with and
// without crossing NATS, and what one broadcast costs a relay in memory. See README.md beside
// this file.
//
//	go run ./harness/cmd/fanout            # the whole benchmark, about four minutes
//	go run ./harness/cmd/fanout -quick     # the same table in well under a minute, noisier
//	go run ./harness/cmd/fanout -addr 127.0.0.1:5555 -receivers 100   # one run against a running server
//	go run ./harness/cmd/fanout -targets stage7,stage8,stage8-across -workloads flood -sizes 32
//	go run ./harness/cmd/fanout -targets epoll,select -workloads bigline,stalled
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
)

func main() {
	cli.SetUsage("fanout", "fanout measures how fast chat relays fan lines out to many receivers: stage 5, stage 7, a goroutine relay, Redis and NATS, side by side; on request, stage 8 across NATS, and the memory one broadcast costs.")
	// One run against a server that is already running.
	addr := flag.String("addr", "", "run one workload against the server at this host:port instead of the whole benchmark")
	protocol := flag.String("protocol", "line", "with -addr: the server's protocol: line (stages 2 to 5, gorelay), stage7, redis (SUBSCRIBE/PUBLISH on one channel) or nats (SUB/PUB on one subject)")
	receivers := flag.Int("receivers", 100, "with -addr: receiving connections")
	senders := flag.Int("senders", 1, "with -addr: sending connections")
	size := flag.Int("size", 32, "with -addr: bytes per line, \"\\r\\n\" included")
	rate := flag.Float64("rate", 0, "with -addr: deliveries per second in all (0 floods)")
	messages := flag.Int64("messages", 0, "with -addr: send exactly this many messages, then stop (0: send for -duration)")
	serverPID := flag.Int("server-pid", 0, "with -addr: the server's process id, to report its CPU time")

	// The whole benchmark.
	b := &bench{}
	quick := flag.Bool("quick", false, "shorter runs and fewer idle connections: a rough table in under a minute")
	targets := flag.String("targets", "select,epoll,stage7,gorelay,redis,nats", "servers to measure: select, epoll (stage 5 with that poller), stage7 (with epoll), gorelay, redis, nats; and stage8 (a room of two servers, everyone on the second) or stage8-across (the senders on the first: every line crosses NATS)")
	workloads := flag.String("workloads", "flood,senders,paced,memory,idle", "what to run: flood (one sender, N = 10, 100, 1000), senders (4 senders, N = 100), paced, memory, idle; and, on the servers of the line protocol only, the memory of one broadcast: bigline (one 64 KiB line to 2,000 receivers), stalled (a flood with 64 stalled readers)")
	sizes := flag.String("sizes", "32,64", "message sizes in bytes, \"\\r\\n\" included")
	flag.DurationVar(&b.duration, "duration", time.Second, "how long each flood sends (with -addr: each run)")
	flag.DurationVar(&b.pacedDuration, "paced-duration", 1500*time.Millisecond, "how long each paced run sends")
	flag.Float64Var(&b.pacedRate, "paced-rate", 100_000, "deliveries per second in the paced runs")
	flag.IntVar(&b.memoryConns, "memory-conns", 10_000, "idle connections for the memory figure")
	flag.IntVar(&b.idleConns, "idle-conns", 1_000, "idle connections for the idle CPU figure")
	flag.DurationVar(&b.idleWindow, "idle-window", 10*time.Second, "how long to count an idle server's CPU ticks")
	flag.IntVar(&b.windowBytes, "window-bytes", 16<<20, "flood: bytes in flight across all receivers (at most 256 KiB each)")
	flag.BoolVar(&b.pin, "pin", true, "pin servers to CPU 0 and the generator to CPU 1 with taskset, when there are two CPUs or more")
	flag.StringVar(&b.redisServer, "redis-server", "redis-server", "the redis-server executable")
	flag.StringVar(&b.natsServer, "nats-server", "nats-server", "the nats-server executable (looked for on PATH, then in $GOBIN, $GOPATH/bin and ~/go/bin)")
	flag.IntVar(&b.rounds, "rounds", 3, "run every throughput workload this many times and keep the best")
	flag.DurationVar(&b.stall, "stall", 10*time.Second, "give up on a run when nothing arrives for this long")
	drawChart := flag.Bool("chart", false, "write the throughput figures to fanout.tsv beside this command, and draw its README's charts from them")
	flag.Parse()

	if *addr != "" {
		if *protocol == "line" {
			*protocol = lineProtocol
		}
		if *protocol != lineProtocol && *protocol != redisProtocol && *protocol != natsProtocol && *protocol != stage7Protocol {
			fmt.Fprintf(os.Stderr, "fanout: unknown -protocol %q (want line, stage7, redis or nats)\n", *protocol)
			os.Exit(2)
		}
		w := workload{
			addr: *addr, protocol: *protocol, receivers: *receivers, senders: *senders, size: *size,
			rate: *rate, duration: b.duration, messages: *messages, stall: b.stall, serverPID: *serverPID,
		}
		w.window = floodWindow(w, b.windowBytes)
		if w.receivers < 1 || w.senders < 1 || w.size < minSize || w.senders >= syncSender {
			fmt.Fprintf(os.Stderr, "fanout: need at least one receiver, 1 to %d senders and lines of %d bytes or more\n", syncSender-1, minSize)
			os.Exit(2)
		}
		res := run(w)
		fmt.Println(describe(w, res))
		if res.err != nil {
			os.Exit(1)
		}
		return
	}

	if *quick {
		// Only the figures the user did not set themselves get shorter.
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		shorten := map[string]string{"duration": "500ms", "paced-duration": "1s", "memory-conns": "2000", "idle-window": "3s", "rounds": "1"}
		for name, value := range shorten {
			if !set[name] {
				_ = flag.Set(name, value)
			}
		}
	}
	b.sizes, b.workloads, b.rounds = parseSizes(*sizes), splitList(*workloads), max(b.rounds, 1)
	for _, name := range splitList(*targets) {
		t, ok := knownTargets[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "fanout: unknown target %q (want select, epoll, stage7, gorelay, redis, nats, stage8 or stage8-across)\n", name)
			os.Exit(2)
		}
		b.targets = append(b.targets, t)
	}
	if b.sizes == nil {
		fmt.Fprintf(os.Stderr, "fanout: -sizes wants a comma-separated list of sizes of %d bytes or more\n", minSize)
		os.Exit(2)
	}
	b.pin = b.pin && runtime.NumCPU() >= 2
	if _, err := exec.LookPath("taskset"); err != nil {
		b.pin = false
	}

	if slices.ContainsFunc(b.targets, func(t target) bool { return t.room }) {
		var err error
		if b.modules, err = os.MkdirTemp("", "fanout-"); err != nil {
			cli.Fatal("%v", err)
		}
	}
	// Ctrl-C must not leave servers or builds behind: the harness kills every process it
	// started, those started from now on included, and deletes the builds.
	cli.CleanUpOnSignal(b.modules)
	began := time.Now()
	err := b.run()
	if err == nil && *drawChart {
		err = b.writeChart(began)
	}
	os.RemoveAll(b.modules)
	if err != nil {
		cli.Fatal("%v", err) // which stops the servers and deletes the builds
	}
	harness.StopAll()
}

func parseSizes(list string) []int {
	var sizes []int
	for _, s := range splitList(list) {
		n, err := strconv.Atoi(s)
		if err != nil || n < minSize {
			return nil
		}
		sizes = append(sizes, n)
	}
	return sizes
}

func splitList(list string) []string {
	var out []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// floodWindow is how many messages a flood lets the slowest receiver fall behind. Without a
// window a sender outruns the fan-out, output queues grow until the server drops receivers as
// slow readers, and nothing is measured; with one, the server always has work queued and no
// queue ever nears a server's slow-reader limit.
func floodWindow(w workload, windowBytes int) int {
	perReceiver := min(windowBytes/w.receivers, 256<<10)
	return max(perReceiver/w.size, 16)
}

// describe is the one-line report of a single run.
func describe(w workload, r result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "fanout: delivered %d of %d messages (%d sent to %d receivers by %d senders)",
		r.delivered, r.expected, r.sent, w.receivers, w.senders)
	if r.err != nil {
		fmt.Fprintf(&b, ": %v", r.err)
		return b.String()
	}
	fmt.Fprintf(&b, " in %v: %.0f deliveries/s, latency p50 %v p99 %v p99.9 %v, generator CPU %v",
		r.elapsed.Round(time.Microsecond), r.deliveriesPerSecond(),
		r.latency.quantile(0.5), r.latency.quantile(0.99), r.latency.quantile(0.999),
		r.generatorCPU.Round(time.Millisecond))
	if w.serverPID > 0 {
		fmt.Fprintf(&b, ", server CPU %v", r.serverCPU)
	}
	if r.generatorSaturated() {
		b.WriteString(" (generator saturated: a lower bound)")
	}
	return b.String()
}
