//go:build linux

// Command clusterfanout measures what crossing NATS costs stage 8. One sender floods lines to N
// receivers, three ways: stage 7 alone, sender and receivers on one server; stage 8 in a room of
// two servers with sender and receivers on the same one (NATS only carries the line to the
// other, empty, server); and stage 8 with the sender on one server and the receivers on the
// other, every line crossing NATS on its way.
//
//	go run ./harness/cmd/clusterfanout
//	go run ./harness/cmd/clusterfanout -receivers 10,100,1000 -lines 200000
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

func main() {
	cli.SetUsage("clusterfanout", "clusterfanout measures one sender's flood to many receivers on stage 7, and on stage 8 with and without crossing NATS.")
	receiverCounts := flag.String("receivers", "10,100", "receiver counts to measure, comma-separated")
	lines := flag.Int("lines", 100_000, "lines the sender floods")
	size := flag.Int("size", 32, "bytes per line as sent, \"\\n\" included")
	rounds := flag.Int("rounds", 3, "runs of each, of which the best is kept")
	flag.Parse()
	var counts []int
	for _, field := range strings.Split(*receiverCounts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 || flag.NArg() > 0 || *lines < 1 || *size < 2 || *rounds < 1 {
			fmt.Fprintln(os.Stderr, "clusterfanout: -receivers takes positive counts, -lines and -rounds must be positive, -size at least 2, and no arguments")
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	stage8Dir, err := os.MkdirTemp("", "clusterfanout-")
	check(err)
	defer os.RemoveAll(stage8Dir)
	defer harness.RemoveBuilds()
	// Ctrl-C: what cli.CleanUpOnSignal does (kill the servers, delete the builds), and
	// stage 8's build too, which is not the harness's.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-signals
		harness.StopAll()
		os.RemoveAll(stage8Dir)
		os.Exit(130)
	}()
	stage7, err := harness.BuildBinary("stage7-identity")
	check(err)
	stage8, err := buildStage8(stage8Dir)
	check(err)

	fmt.Printf("clusterfanout: one sender's flood, %d lines of %d bytes, best of %d, %s\n",
		*lines, *size, *rounds, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("machine: %s\n", tester.Machine())
	fmt.Println("Every server runs with -poller epoll -quiet -max-pending 64 MiB (and -max-rate 0 where it exists).")
	fmt.Printf("\n%-10s %-46s %s\n", "receivers", "setup", "deliveries/s")
	for _, n := range counts {
		setups := []struct {
			name string
			run  func() (float64, error)
		}{
			{"stage 7, one server", func() (float64, error) { return oneServer(stage7, n, *lines, *size) }},
			{"stage 8, sender and receivers on one server", func() (float64, error) { return twoServers(stage8, false, n, *lines, *size) }},
			{"stage 8, sender and receivers across NATS", func() (float64, error) { return twoServers(stage8, true, n, *lines, *size) }},
		}
		for _, setup := range setups {
			best := 0.0
			var lastErr error
			for range *rounds {
				rate, err := setup.run()
				if err != nil {
					lastErr = err
					continue
				}
				best = max(best, rate)
			}
			figure := cli.Thousands(best)
			if best == 0 {
				figure = "failed: " + lastErr.Error()
			}
			fmt.Printf("%-10d %-46s %s\n", n, setup.name, figure)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "clusterfanout:", err)
		os.Exit(1)
	}
}

// buildStage8 builds stage 8 in its own module's folder (the root module cannot build it).
func buildStage8(dir string) (string, error) {
	root, err := harness.Root()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "stage8-cluster")
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = filepath.Join(root, "stage8-cluster")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in stage8-cluster: %v\n%s", err, out)
	}
	return path, nil
}

// server is a running chat server and the lines it printed when it started.
type server struct {
	*harness.Process // killed on Ctrl-C too
	addr             string
	lines            []string
}

// start starts bin on 127.0.0.1:0 and waits for its start-up lines: until ready matches one.
func start(bin, ready string, args ...string) (*server, error) {
	args = append([]string{"-addr", "127.0.0.1:0", "-poller", "epoll", "-quiet", "-max-pending", strconv.Itoa(64 << 20)}, args...)
	if help, _ := exec.Command(bin, "-h").CombinedOutput(); strings.Contains(string(help), "-max-rate") {
		args = append(args, "-max-rate", "0") // flood control off: this floods on purpose
	}
	p, err := harness.StartProcess(bin, nil, args...)
	if err != nil {
		return nil, err
	}
	s := &server{Process: p}
	_, ok := p.Await(20*time.Second, func(line string) bool {
		if port := harness.StartedPort(line); port != "" {
			s.addr = "127.0.0.1:" + port
		}
		return strings.Contains(line, ready) && s.addr != ""
	})
	if s.lines = p.Lines(); !ok {
		p.Kill()
		return nil, fmt.Errorf("%s was not ready within 20 s: %q %s", bin, s.lines, p.Stderr())
	}
	return s, nil
}

func oneServer(bin string, receivers, lines, size int) (float64, error) {
	s, err := start(bin, "waiting for sockets")
	if err != nil {
		return 0, err
	}
	defer s.Kill()
	return flood(s.addr, s.addr, receivers, lines, size)
}

// twoServers starts a room of two stage 8 servers, the first running NATS; the receivers are
// on the second, and the sender on the first (across) or the second.
func twoServers(bin string, across bool, receivers, lines, size int) (float64, error) {
	hub, err := start(bin, "in the room", "-nats-listen", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer hub.Kill()
	// The hub's NATS asks for a secret: its log says the URLs to join with, secret included.
	url := regexp.MustCompile(`(?m)^Server:   (nats://\w+@127\.0\.0\.1:\d+)$`).FindStringSubmatch(strings.Join(hub.lines, "\n"))
	if url == nil {
		return 0, fmt.Errorf("the first server did not say where NATS is: %q", hub.lines)
	}
	second, err := start(bin, "in the room", "-nats", url[1])
	if err != nil {
		return 0, err
	}
	defer second.Kill()
	senderAddr := second.addr
	if across {
		senderAddr = hub.addr
	}
	return flood(senderAddr, second.addr, receivers, lines, size)
}

// flood joins the receivers at receiverAddr and a sender at senderAddr, sends lines as fast as
// the sender's socket takes them, and returns the deliveries per second until the last
// receiver has the last line.
func flood(senderAddr, receiverAddr string, receivers, lines, size int) (float64, error) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	join := func(addr, name string) (net.Conn, *bufio.Reader, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		conns = append(conns, c)
		r := bufio.NewReaderSize(c, 64<<10)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte(name + "\n"))
		for _, want := range []string{"Welcome", "* The room"} {
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, want) {
				return nil, nil, fmt.Errorf("%s got %q (%v), want %s...", name, line, err, want)
			}
		}
		c.SetDeadline(time.Time{})
		return c, r, nil
	}
	readers := make([]*bufio.Reader, receivers)
	for i := range readers {
		var err error
		if _, readers[i], err = join(receiverAddr, fmt.Sprintf("r%d", i)); err != nil {
			return 0, err
		}
	}
	sender, _, err := join(senderAddr, "sender")
	if err != nil {
		return 0, err
	}
	// Every receiver first waits for the sender's arrival, so that the clock starts on a room
	// that knows everyone.
	for i, r := range readers {
		conns[i].SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return 0, fmt.Errorf("r%d did not hear the sender arrive: %v", i, err)
			}
			if line == "* sender has entered the room\n" {
				break
			}
		}
	}
	line := []byte(strings.Repeat("x", size-1) + "\n")
	var wg sync.WaitGroup
	failures := make(chan error, receivers)
	began := time.Now()
	for i, r := range readers {
		conns[i].SetReadDeadline(began.Add(60 * time.Second))
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := []byte("[sender] " + string(line))
			for got := 0; got < lines; got++ {
				l, err := r.ReadSlice('\n')
				if err != nil || string(l) != string(want) {
					failures <- fmt.Errorf("r%d: line %d is %q (%v)", i, got, l, err)
					return
				}
			}
		}()
	}
	go func() {
		chunk := make([]byte, 0, 64<<10)
		for sent := 0; sent < lines; {
			chunk = chunk[:0]
			for ; sent < lines && len(chunk)+len(line) <= cap(chunk); sent++ {
				chunk = append(chunk, line...)
			}
			if _, err := sender.Write(chunk); err != nil {
				return
			}
		}
	}()
	wg.Wait()
	elapsed := time.Since(began)
	select {
	case err := <-failures:
		return 0, err
	default:
	}
	if elapsed <= 0 {
		return 0, errors.New("no time elapsed")
	}
	return float64(receivers) * float64(lines) / elapsed.Seconds(), nil
}
