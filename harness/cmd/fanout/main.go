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
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
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

// target is a server the benchmark can start.
type target struct {
	name     string // in the table
	pkg      string // module folder, or "" for Redis and NATS
	args     []string
	protocol string
	room     bool // stage 8: a room of two servers, joined by NATS; the receivers on the second
	across   bool // the senders on the first server, so that every line crosses NATS
}

// noFloodControl turns the stages' flood control off: a benchmark floods on purpose, and with
// a budget of 64 KiB/s per sender it would measure the budget, not the relay.
var noFloodControl = []string{"-max-rate", "0"}

var knownTargets = map[string]target{
	"select":  {name: "stage5 select", pkg: "stage5-select", args: []string{"-poller", "select", "-quiet"}},
	"epoll":   {name: "stage5 epoll", pkg: "stage5-select", args: []string{"-poller", "epoll", "-quiet"}},
	"stage7":  {name: "stage7 epoll", pkg: "stage7-identity", args: append([]string{"-poller", "epoll", "-quiet"}, noFloodControl...), protocol: stage7Protocol},
	"gorelay": {name: "gorelay", pkg: "harness/cmd/gorelay", args: []string{"-quiet"}},
	"stage8": {name: "stage8 local", pkg: "stage8-cluster", args: append([]string{"-poller", "epoll", "-quiet"}, noFloodControl...),
		protocol: stage7Protocol, room: true},
	"stage8-across": {name: "stage8 across", pkg: "stage8-cluster", args: append([]string{"-poller", "epoll", "-quiet"}, noFloodControl...),
		protocol: stage7Protocol, room: true, across: true},
	"redis": {name: "redis", protocol: redisProtocol},
	"nats":  {name: "nats-server", protocol: natsProtocol},
}

// selectLimited says the target waits with select, which cannot watch descriptors of 1024 or
// more.
func (t target) selectLimited() bool {
	return t.pkg == "stage5-select" && slices.Contains(t.args, "select")
}

// server is a running target.
type server struct {
	target
	process    *harness.Process
	addr       string
	control    net.Conn // Redis: a connection for INFO
	monitor    string   // NATS: its monitoring port's address, for /varz
	hub        *server  // stage 8: the room's first server, which runs NATS
	senderAddr string   // stage 8: where the senders connect, if not at addr
}

func (s *server) pid() int { return s.process.PID() }

func (s *server) stop() {
	if s.hub != nil {
		s.hub.stop()
	}
	if s.control != nil {
		s.control.Close()
	}
	s.process.Kill()
}

// connected is how many clients the server says it holds: the workshop's servers log every
// connection and disconnection, Redis answers INFO.
func (s *server) connected() (int, error) {
	switch s.protocol {
	case natsProtocol:
		return natsConnections(s.monitor)
	case redisProtocol:
		info, err := redisCommand(s.control, "INFO clients")
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "connected_clients:"); ok {
				n, err := strconv.Atoi(rest)
				return n - 1, err // not counting the control connection
			}
		}
		return 0, errors.New("no connected_clients in INFO")
	}
	n := 0
	if s.hub != nil {
		hub, _ := s.hub.connected()
		n += hub
	}
	for _, line := range s.process.Lines() {
		switch {
		case line == "Server: client connected":
			n++
		case strings.HasPrefix(line, "Server: client disconnected"):
			n--
		case s.protocol == stage7Protocol && strings.HasSuffix(line, " left") && !strings.HasPrefix(line, "Server: received from "):
			n-- // stage 7: "Server: alice left", for a client that had joined
		}
	}
	return n, nil
}

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

// start starts a target: one server, or for stage 8 a room of two.
func (b *bench) start(t target, maxClients int) (*server, error) {
	if !t.room {
		return b.startOne(t, maxClients)
	}
	// The first server runs NATS, which asks for a secret: its log says the URL to join with,
	// secret included.
	first, second := t, t
	first.args = append(slices.Clip(t.args), "-nats-listen", "127.0.0.1:0")
	hub, err := b.startOne(first, maxClients)
	if err != nil {
		return nil, err
	}
	url := ""
	for _, line := range hub.process.Lines() {
		if rest, ok := strings.CutPrefix(line, "Server:   "); ok && strings.HasPrefix(rest, "nats://") {
			url = rest
		}
	}
	if url == "" {
		hub.stop()
		return nil, fmt.Errorf("the first server did not say where NATS is: %q", hub.process.Lines())
	}
	second.args = append(slices.Clip(t.args), "-nats", url)
	s, err := b.startOne(second, maxClients)
	if err != nil {
		hub.stop()
		return nil, err
	}
	s.hub = hub
	if t.across {
		s.senderAddr = hub.addr
	}
	return s, nil
}

// build builds a folder of the module, or one that is a module of its own (stage 8) in that
// folder, into b.modules.
func (b *bench) build(pkg string) (string, error) {
	root, err := harness.Root()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, pkg, "go.mod")); err != nil {
		return harness.BuildBinary(pkg)
	}
	path := filepath.Join(b.modules, pkg)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = filepath.Join(root, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", pkg, err, out)
	}
	return path, nil
}

// startOne starts a server on 127.0.0.1, pinned to CPU 0 from its first instruction: started
// under taskset, a Go server sees one CPU and sets GOMAXPROCS to 1, as it would for a user
// who pins it; pinned after its start, it would keep two Ps time-sharing one core.
func (b *bench) startOne(t target, maxClients int) (*server, error) {
	s := &server{target: t}
	command, args := "", []string{}
	switch t.protocol {
	case natsProtocol:
		port, err1 := tester.FreePort()
		monitor, err2 := tester.FreePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.monitor = net.JoinHostPort("127.0.0.1", strconv.Itoa(monitor))
		command, args = b.natsServer, natsArgs(port, monitor)
	case redisProtocol:
		port, err := tester.FreePort()
		if err != nil {
			return nil, err
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		command = b.redisServer
		args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--maxclients", strconv.Itoa(maxClients + 100), "--daemonize", "no"}
	default:
		bin, err := b.build(t.pkg)
		if err != nil {
			return nil, err
		}
		command, args = bin, append([]string{"-addr", "127.0.0.1:0"}, t.args...)
	}
	if b.pin {
		command, args = "taskset", append([]string{"-c", "0", command}, args...) // taskset execs it: same pid
	}
	var err error
	if s.process, err = harness.StartProcess(command, nil, args...); err != nil {
		return nil, err
	}
	switch t.protocol {
	case natsProtocol:
		// nats-server greets a client with its INFO line.
		conn, err := answered(s.addr, func(c net.Conn) bool {
			c.SetDeadline(time.Now().Add(time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			return err == nil && strings.HasPrefix(line, "INFO ")
		})
		if err != nil {
			return nil, fmt.Errorf("nats-server did not greet a client: %v; its output: %q", err, s.process.Stderr())
		}
		conn.Close()
		return s, nil
	case redisProtocol:
		if s.control, err = answered(s.addr, func(c net.Conn) bool {
			reply, err := redisCommand(c, "PING")
			return err == nil && reply == "PONG"
		}); err != nil {
			return nil, fmt.Errorf("redis did not answer PING: %v; its output: %q", err, s.process.Lines())
		}
		return s, nil
	}
	listening, err := harness.Listening(s.process, t.pkg)
	if err != nil {
		return nil, err
	}
	s.addr = listening.Addr
	if t.room {
		if _, ok := s.process.Await(harness.Deadline, func(line string) bool { return strings.Contains(line, "in the room") }); !ok {
			return nil, fmt.Errorf("%s did not join the room within %v: %q", t.name, harness.Deadline, s.process.Stderr())
		}
	}
	return s, nil
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

// dial opens n connections to s with d and waits until s holds want clients.
func (b *bench) dial(s *server, d *net.Dialer, n, want int) ([]net.Conn, error) {
	var conns []net.Conn
	for i := range n {
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			closeConns(conns)
			return nil, fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
	}
	if err := waitHeld(s, want); err != nil {
		closeConns(conns)
		return nil, err
	}
	time.Sleep(300 * time.Millisecond) // let the server settle after the accepts
	return conns, nil
}

func closeConns(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// waitHeld waits until the server holds n connections.
func waitHeld(s *server, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		held, err := s.connected()
		if err != nil || held >= n {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server holds %d of %d connections after 30s", held, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// answered waits until a freshly started server at addr answers a new connection as ok
// wants, and returns that connection.
func answered(addr string, ok func(net.Conn) bool) (net.Conn, error) {
	deadline := time.Now().Add(harness.Deadline)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			if ok(conn) {
				return conn, nil
			}
			conn.Close()
			err = errors.New("no answer")
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisCommand sends an inline command and returns a simple or bulk string reply.
func redisCommand(conn net.Conn, command string) (string, error) {
	if err := conn.SetDeadline(time.Now().Add(harness.Deadline)); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	first, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	first = strings.TrimRight(first, "\r\n")
	switch {
	case strings.HasPrefix(first, "+"):
		return first[1:], nil
	case strings.HasPrefix(first, "$"):
		n, err := strconv.Atoi(first[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad reply %q", first)
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return "", fmt.Errorf("reply %q", first)
}
