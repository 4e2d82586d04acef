//go:build linux

// Command relaymem measures what a broadcast costs stage 5 in memory, in the two cases where
// copying it into every receiver's output buffer hurts most:
//
//	(a) one 64 KiB line to 2,000 receivers that read it: the extra resident memory of the server
//	    at its peak (VmHWM) and again a few seconds after everything was delivered (VmRSS);
//	(b) a flood from one sender, with one healthy receiver and 64 stalled readers (a small
//	    receive buffer, never read) that the server holds until -max-pending each and drops: the
//	    server's peak, against -max-pending and against 64 × -max-pending.
//
// A server that keeps one copy of a broadcast per receiver needs receivers × line in (a) and
// up to stalled × max-pending in (b); one that shares a single copy needs about one line in
// (a) and about max-pending in (b).
//
//	go run ./harness/cmd/relaymem                   # stage 5 with epoll and with select
//	go run ./harness/cmd/relaymem -poller epoll -max-pending 1048576
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"golang.org/x/sys/unix"
)

func main() {
	cli.SetUsage("relaymem", "relaymem measures stage 5's memory when one big line goes to 2,000 receivers and when 64 stalled readers sit behind a flood.")
	pollers := flag.String("poller", "epoll,select", "stage 5's pollers to measure, in turn")
	receivers := flag.Int("receivers", 2000, "(a): receivers of the big line")
	lineSize := flag.Int("line", 64<<10, "(a): bytes of the big line, \"\\r\\n\" included (stage 5 takes lines of up to 65536 bytes before the terminator)")
	after := flag.Duration("after", 3*time.Second, "(a): how long after delivery to read the resident memory again")
	stalled := flag.Int("stalled", 64, "(b): stalled readers")
	maxPending := flag.Int("max-pending", 4<<20, "(b): stage 5's -max-pending, the bytes a client may leave unread before it is dropped")
	floodLimit := flag.Int("flood-limit", 0, "(b): stop the flood after this many bytes even if not every stalled reader was dropped (0: 16 × -max-pending + 64 MiB)")
	flag.Parse()
	if flag.NArg() > 0 || *receivers < 1 || *lineSize < 3 || *stalled < 1 || *maxPending < 1 {
		fmt.Fprintln(os.Stderr, "relaymem: -receivers, -stalled and -max-pending must be positive, -line at least 3, and no arguments")
		os.Exit(2)
	}
	if *floodLimit <= 0 {
		*floodLimit = 16**maxPending + 64<<20
	}
	cli.CleanUpOnSignal()

	fmt.Printf("relaymem: stage 5's memory for one broadcast to many, %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Printf("machine: %s\n", tester.Machine())
	fmt.Printf("command: %s\n", strings.Join(append([]string{"go run ./harness/cmd/relaymem"}, os.Args[1:]...), " "))
	fmt.Println("Memory is the server's, from /proc/<pid>/status: VmRSS (resident now) and VmHWM (the most it was ever resident).")
	fmt.Println("\"extra\" is above the server's VmRSS just before the broadcast, with every client already connected.")
	fmt.Println()

	pollerList := strings.Split(*pollers, ",")
	fmt.Printf("(a) one line of %s bytes to %s receivers that read it; one copy per receiver would be %s\n\n",
		cli.Thousands(float64(*lineSize)), cli.Thousands(float64(*receivers)), size(int64(*lineSize)*int64(*receivers)))
	fmt.Printf("%-8s %11s %11s %11s %13s %11s\n", "poller", "RSS before", "peak", "extra peak", "RSS "+after.String()+" on", "extra then")
	for _, poller := range pollerList {
		if poller == "select" && *receivers+10 >= 1024 {
			fmt.Printf("%-8s -  (select cannot watch descriptors of 1024 or more; see epoll)\n", poller)
			continue
		}
		row, err := bigLine(poller, *receivers, *lineSize, *after)
		if err != nil {
			cli.Fatal("(a) with %s: %v", poller, err)
		}
		fmt.Println(row)
	}
	fmt.Println()

	fmt.Printf("(b) a flood of 1 KiB lines from one sender to one healthy receiver and %d stalled readers (SO_RCVBUF 4 KiB,\n", *stalled)
	fmt.Printf("never read), until the server has dropped every stalled reader; -max-pending %s, %d × that is %s\n\n",
		size(int64(*maxPending)), *stalled, size(int64(*stalled)*int64(*maxPending)))
	fmt.Printf("%-8s %8s %9s %11s %11s %11s %13s %13s %11s\n", "poller", "dropped", "flooded", "RSS before", "peak", "extra peak", "/max-pending", "/(N×max-p.)", "RSS 1s on")
	for _, poller := range pollerList {
		row, err := stalledFlood(poller, *stalled, *maxPending, *floodLimit)
		if err != nil {
			cli.Fatal("(b) with %s: %v", poller, err)
		}
		fmt.Println(row)
	}
	harness.RemoveBuilds()
}

// startServer starts stage 5 and waits until it holds want clients, once they are dialled.
func startServer(poller string, args ...string) (*harness.Server, error) {
	s, err := harness.StartServerProcess("stage5-select", append([]string{"-poller", poller, "-quiet"}, args...)...)
	if err != nil && s != nil {
		s.Kill()
	}
	return s, err
}

// waitConnected waits until the server's log shows want connections in all.
func waitConnected(s *harness.Server, want int) error {
	deadline := time.Now().Add(30 * time.Second)
	for n := range want {
		if _, ok := s.Await(time.Until(deadline), func(line string) bool { return line == "Server: client connected" }); !ok {
			return fmt.Errorf("the server logged %d of %d connections; stderr: %q", n, want, s.Stderr())
		}
	}
	return nil
}

// bigLine is measurement (a).
func bigLine(poller string, receivers, lineSize int, after time.Duration) (string, error) {
	s, err := startServer(poller)
	if err != nil {
		return "", err
	}
	defer s.Kill()
	sender, err := net.DialTimeout("tcp", s.Addr, harness.Deadline)
	if err != nil {
		return "", err
	}
	defer sender.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range receivers {
		c, err := net.DialTimeout("tcp", s.Addr, harness.Deadline)
		if err != nil {
			return "", fmt.Errorf("receiver %d: %w", i+1, err)
		}
		conns = append(conns, c)
	}
	if err := waitConnected(s, receivers+1); err != nil {
		return "", err
	}
	time.Sleep(300 * time.Millisecond) // let the server settle after the accepts
	before, err := tester.ReadMemory(s.PID())
	if err != nil {
		return "", err
	}

	line := strings.Repeat("x", lineSize-2) + "\r\n"
	var wg sync.WaitGroup
	var failed atomic.Value
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			got := make([]byte, len(line))
			if _, err := io.ReadFull(c, got); err != nil {
				failed.Store(err)
			} else if string(got) != line {
				failed.Store(errors.New("a receiver got something else than the line"))
			}
		}()
	}
	sender.SetWriteDeadline(time.Now().Add(harness.Deadline))
	if _, err := io.WriteString(sender, line); err != nil {
		return "", err
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return "", err
	}
	peak, err := tester.ReadMemory(s.PID())
	if err != nil {
		return "", err
	}
	time.Sleep(after)
	later, err := tester.ReadMemory(s.PID())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%-8s %11s %11s %11s %13s %11s", poller, size(before.RSS), size(peak.Peak),
		extra(peak.Peak-before.RSS, before.Peak >= peak.Peak), size(later.RSS), extra(later.RSS-before.RSS, false)), nil
}

// stalledFlood is measurement (b).
func stalledFlood(poller string, stalled, maxPending, floodLimit int) (string, error) {
	s, err := startServer(poller, "-max-pending", fmt.Sprint(maxPending))
	if err != nil {
		return "", err
	}
	defer s.Kill()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func(control func(string, string, syscall.RawConn) error) (net.Conn, error) {
		d := net.Dialer{Timeout: harness.Deadline, Control: control}
		c, err := d.Dial("tcp", s.Addr)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	sender, err := dial(nil)
	if err != nil {
		return "", err
	}
	healthy, err := dial(nil)
	if err != nil {
		return "", err
	}
	smallBuffer := func(_, _ string, raw syscall.RawConn) error {
		var err error
		raw.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return err
	}
	for i := range stalled {
		if _, err := dial(smallBuffer); err != nil {
			return "", fmt.Errorf("stalled reader %d: %w", i+1, err)
		}
	}
	if err := waitConnected(s, stalled+2); err != nil {
		return "", err
	}
	time.Sleep(300 * time.Millisecond)
	before, err := tester.ReadMemory(s.PID())
	if err != nil {
		return "", err
	}

	// The healthy receiver reads everything; the sender stays at most 1 MiB ahead of it, as a
	// client that reads as fast as it can would let it.
	var received atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		for {
			n, err := healthy.Read(buf)
			received.Add(int64(n))
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	dropped := func() int {
		n := 0
		for _, line := range s.Lines() {
			if strings.HasPrefix(line, "Server: client disconnected") {
				n++
			}
		}
		return n
	}
	batch := []byte(strings.Repeat(strings.Repeat("f", 1022)+"\r\n", 64)) // 64 KiB
	sent := int64(0)
	deadline := time.Now().Add(2 * time.Minute)
	for sent < int64(floodLimit) && dropped() < stalled {
		for sent-received.Load() > 1<<20 {
			select {
			case err := <-readErr:
				return "", fmt.Errorf("the healthy receiver: %w", err)
			default:
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("the healthy receiver is stuck at %d of %d bytes", received.Load(), sent)
			}
			time.Sleep(200 * time.Microsecond)
		}
		sender.SetWriteDeadline(time.Now().Add(harness.Deadline))
		if _, err := sender.Write(batch); err != nil {
			return "", fmt.Errorf("the sender: %w", err)
		}
		sent += int64(len(batch))
	}
	for received.Load() < sent {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the healthy receiver got %d of %d bytes", received.Load(), sent)
		}
		time.Sleep(time.Millisecond)
	}
	peak, err := tester.ReadMemory(s.PID())
	if err != nil {
		return "", err
	}
	time.Sleep(time.Second)
	later, err := tester.ReadMemory(s.PID())
	if err != nil {
		return "", err
	}
	grew := peak.Peak - before.RSS
	return fmt.Sprintf("%-8s %4d/%-3d %9s %11s %11s %11s %12.2fx %12.2fx %11s", poller, dropped(), stalled, size(sent),
		size(before.RSS), size(peak.Peak), extra(grew, before.Peak >= peak.Peak),
		float64(grew)/float64(maxPending), float64(grew)/float64(int64(stalled)*int64(maxPending)), size(later.RSS)), nil
}

// size writes bytes in MiB (or KiB below one MiB).
func size(b int64) string {
	if b < 1<<20 && b > -1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(b)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// extra writes a growth; notPeak marks a peak that had been reached before the measurement,
// which makes the figure an upper bound.
func extra(b int64, notPeak bool) string {
	s := "+" + size(b)
	if b < 0 {
		s = size(b)
	}
	if notPeak {
		s = "≤" + s
	}
	return s
}
