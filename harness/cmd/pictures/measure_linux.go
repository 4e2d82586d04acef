package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// A CPU run: idle with no client, then one client connected and silent, then a line every
// half second from that client.
const (
	cpuRunLength = 10 * time.Second
	cpuInterval  = 100 * time.Millisecond
	clientAt     = 3 * time.Second
	linesFrom    = 6500 * time.Millisecond
	lineEvery    = 500 * time.Millisecond
	lineCount    = 5
)

func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// measureCPU starts stage on 127.0.0.1 port 0 and samples its CPU with the harness's meter,
// window after window, while the run goes through its phases.
func measureCPU(stage string) (*pictures.CPURun, error) {
	server, err := harness.StartServerProcess(stage)
	if server != nil {
		defer server.Kill()
	}
	if err != nil {
		return nil, err
	}
	run := &pictures.CPURun{Stage: stage, Machine: tester.Machine(), Command: "go run ./harness/cmd/pictures -only cpu",
		Load: tester.LoadAverage(), Window: cpuInterval.Seconds()}
	var client net.Conn
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	phase := pictures.PhaseNoClient
	start := time.Now()
	for time.Since(start)+cpuInterval <= cpuRunLength {
		elapsed := time.Since(start)
		if client == nil && elapsed >= clientAt {
			if client, err = net.DialTimeout("tcp", server.Addr, harness.Deadline); err != nil {
				return nil, err
			}
			phase = pictures.PhaseSilent
		}
		if sent := len(run.LinesAt); client != nil && sent < lineCount && elapsed >= linesFrom+time.Duration(sent)*lineEvery {
			if _, err := fmt.Fprintf(client, "line %d\r\n", sent+1); err != nil {
				return nil, err
			}
			run.LinesAt = append(run.LinesAt, seconds(time.Since(start)))
			phase = pictures.PhaseLinesSent
		}
		use, err := harness.MeasureCPU(server.Process, cpuInterval)
		if err != nil {
			return nil, err
		}
		run.Samples = append(run.Samples, pictures.CPUSample{End: seconds(time.Since(start)), Use: use, Phase: phase})
	}
	// Every line reached the server: the run measured what it says it did.
	for i := range lineCount {
		want := fmt.Sprintf("Server: received from client: line %d", i+1)
		if !waitCount(server.Process, want, 1) {
			return nil, fmt.Errorf("the server did not log %q", want)
		}
	}
	return run, nil
}

// A flood run: a reader on a slow link, a pair of clients playing ping-pong, and from
// floodAt a flooder sending "y\n" as fast as its socket takes it (`yes | nc`), until
// floodRunLength; the pings still out get a moment to come back.
const (
	floodRunLength = 8 * time.Second
	floodAt        = time.Second
	floodWindow    = 250 * time.Millisecond
	pingEvery      = 20 * time.Millisecond
	readerChunk    = 16 << 10 // the reader takes at most 16 KiB every 16 ms: 1 MB/s, a laptop on a busy Wi-Fi
	readerTick     = 16 * time.Millisecond
	floodBudget    = 65536 // stage 6's -max-rate as shipped
)

// measureFlood runs the room twice, with the budget and without, and samples each.
func measureFlood() (*pictures.FloodRun, error) {
	run := &pictures.FloodRun{
		Machine: tester.Machine(), Command: "go run ./harness/cmd/pictures -only flood", Load: tester.LoadAverage(),
		Rate: floodBudget, FloodAt: floodAt.Seconds(), Window: floodWindow.Seconds(), ReaderRate: int(float64(readerChunk) / readerTick.Seconds()),
		Dropped: map[string]float64{},
	}
	for _, budget := range []string{pictures.BudgetOn, pictures.BudgetOff} {
		args := []string{"-quiet"}
		if budget == pictures.BudgetOff {
			args = append(args, "-max-rate", "0")
		}
		samples, dropped, err := floodRoom(args)
		if err != nil {
			return nil, fmt.Errorf("budget %s: %w", budget, err)
		}
		for _, s := range samples {
			s.Budget = budget
			run.Samples = append(run.Samples, s)
		}
		if dropped > 0 {
			run.Dropped[budget] = dropped
		}
	}
	return run, nil
}

// floodRoom runs one room and returns its windows, and when the reader was dropped (0 if it
// was not).
func floodRoom(args []string) ([]pictures.FloodSample, float64, error) {
	server, err := harness.StartServerProcess(pictures.FloodStage, args...)
	if server != nil {
		defer server.Kill()
	}
	if err != nil {
		return nil, 0, err
	}
	reader, err := tester.SmallReceiveBuffer.Dial("tcp", server.Addr)
	if err != nil {
		return nil, 0, err
	}
	defer reader.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 3 {
		c, err := net.DialTimeout("tcp", server.Addr, harness.Deadline)
		if err != nil {
			return nil, 0, err
		}
		conns = append(conns, c)
	}
	ping, pong, flooder := conns[0], conns[1], conns[2]
	if !waitCount(server.Process, "Server: client connected", 4) {
		return nil, 0, errors.New("the server did not log four connections")
	}

	start := time.Now()
	windows := int(floodRunLength / floodWindow)
	received := make([]atomic.Int64, windows+1)
	window := func() int { return min(int(time.Since(start)/floodWindow), windows) }

	// The reader: at most 16 KiB every 16 ms, counted by window, until the server drops it.
	var droppedAt atomic.Int64 // nanoseconds from the start
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		buffer := make([]byte, readerChunk)
		for tick := time.Now(); ; tick = tick.Add(readerTick) {
			if late := time.Since(tick); late > 0 {
				tick = tick.Add(late) // no catching up: a slow link does not get faster later
			}
			time.Sleep(time.Until(tick))
			// 16 KiB, counted as it comes: the 4 KiB receive buffer hands it over in pieces.
			for taken := 0; taken < readerChunk; {
				n, err := reader.Read(buffer[taken:])
				taken += n
				received[window()].Add(int64(n))
				if err != nil {
					if time.Since(start) < floodRunLength {
						droppedAt.Store(int64(time.Since(start)))
					}
					return
				}
			}
		}
	}()

	// pong answers every ping; ping notes each round trip by the ping's number.
	go onLines(pong, "ping ", func(n string) error {
		_, err := fmt.Fprintf(pong, "pong %s\n", n)
		return err
	})
	var tripsMu sync.Mutex
	sentAt, trips := map[int]time.Duration{}, map[int]time.Duration{}
	go onLines(ping, "pong ", func(n string) error {
		i, _ := strconv.Atoi(n)
		tripsMu.Lock()
		defer tripsMu.Unlock()
		if at, ok := sentAt[i]; ok {
			trips[i] = time.Since(start) - at
		}
		return nil
	})

	// The flooder, from floodAt, reading and throwing away what it is sent as `yes | nc` does.
	go io.Copy(io.Discard, flooder)
	stopFlood := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		time.Sleep(time.Until(start.Add(floodAt)))
		chunk := bytes.Repeat([]byte("y\n"), 32<<10)
		for {
			select {
			case <-stopFlood:
				return
			default:
			}
			flooder.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			var netErr net.Error
			if _, err := flooder.Write(chunk); err != nil && !(errors.As(err, &netErr) && netErr.Timeout()) {
				return // the server closed it: the run says so in its figures
			}
		}
	}()

	for i := 0; time.Since(start) < floodRunLength; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i) * pingEvery)))
		tripsMu.Lock()
		sentAt[i] = time.Since(start)
		tripsMu.Unlock()
		ping.SetWriteDeadline(time.Now().Add(harness.Deadline))
		if _, err := fmt.Fprintf(ping, "ping %d\n", i); err != nil {
			return nil, 0, fmt.Errorf("ping: %w", err)
		}
	}
	close(stopFlood)
	<-flooded
	time.Sleep(time.Second) // the last pings' answers
	reader.Close()
	<-readerDone

	samples := make([]pictures.FloodSample, windows)
	for w := range samples {
		samples[w] = pictures.FloodSample{
			End:    seconds(time.Duration(w+1) * floodWindow),
			Reader: float64(received[w].Load()) / floodWindow.Seconds(),
			Trip:   math.NaN(),
		}
	}
	// Each window's median round trip; a ping that never came back counts as slower than any.
	byWindow := make([][]float64, windows)
	tripsMu.Lock()
	for i, at := range sentAt {
		if w := int(at / floodWindow); w < windows {
			trip := math.Inf(1)
			if answered, ok := trips[i]; ok {
				trip = answered.Seconds()
			}
			byWindow[w] = append(byWindow[w], trip)
		}
	}
	tripsMu.Unlock()
	for w, window := range byWindow {
		if len(window) == 0 {
			continue
		}
		slices.Sort(window)
		if median := window[len(window)/2]; !math.IsInf(median, 1) {
			samples[w].Trip = math.Round(median*1e5) / 1e5
		}
	}
	dropped := 0.0
	if at := droppedAt.Load(); at > 0 {
		dropped = seconds(time.Duration(at))
	}
	return samples, dropped, nil
}

// onLines calls f with the rest of each line from conn that begins with prefix, its line end
// cut, until conn or f fails.
func onLines(conn net.Conn, prefix string, f func(rest string) error) {
	lines := bufio.NewReaderSize(conn, 64<<10)
	for {
		line, err := lines.ReadSlice('\n')
		if err != nil {
			return
		}
		if rest, ok := strings.CutPrefix(string(line), prefix); ok && f(strings.TrimRight(rest, "\r\n")) != nil {
			return
		}
	}
}

// waitCount waits until the process has printed want n times more.
func waitCount(p *harness.Process, want string, n int) bool {
	deadline := time.Now().Add(harness.Deadline)
	for range n {
		if _, ok := p.Await(time.Until(deadline), func(line string) bool { return line == want }); !ok {
			return false
		}
	}
	return true
}
