//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// What a broadcast costs a relay in memory (the workloads bigline and stalled), in the two
// cases where copying it into every receiver's output queue hurts most:
//
//   - bigline: one 64 KiB line to 2,000 receivers that read it: the server's extra resident
//     memory at its peak (VmHWM), and again a few seconds after everything was delivered;
//   - stalled: a flood from one sender, with one healthy receiver and 64 stalled readers (a
//     small receive buffer, never read) that the server holds until -max-pending each and
//     drops: the server's peak, against -max-pending and against 64 × -max-pending.
//
// A relay that keeps a copy of a broadcast per receiver needs receivers × line in the first
// and up to stalled × max-pending in the second; one that shares a single copy needs about
// one line, and about one max-pending.
const (
	bigLineReceivers = 2000
	bigLineSize      = 64 << 10 // "\r\n" included: stage 5 takes up to 65536 bytes before it
	bigLineAfter     = 3 * time.Second
	stalledReaders   = 64
	stalledMaxSize   = 4 << 20                    // the servers' -max-pending as shipped
	stalledFloodMost = 16*stalledMaxSize + 64<<20 // then the flood stops, every stalled reader dropped or not
)

// broadcastMemory runs bigline and stalled, as b.workloads says, on every target that speaks
// the workshop's line protocol.
func (b *bench) broadcastMemory() error {
	var targets []target
	for _, t := range b.targets {
		if t.protocol == lineProtocol {
			targets = append(targets, t)
		}
	}
	fmt.Println("Memory of a broadcast, the server's, from /proc/<pid>/status: VmRSS (resident now) and VmHWM (the")
	fmt.Println("most it was ever resident); \"extra\" is above its VmRSS just before the broadcast, every client connected.")
	fmt.Println()
	if b.wants("bigline") {
		fmt.Printf("bigline: one line of %s bytes to %s receivers that read it; one copy per receiver would be %s\n\n",
			cli.Thousands(bigLineSize), cli.Thousands(bigLineReceivers), size(bigLineSize*bigLineReceivers))
		fmt.Printf("%-14s %11s %11s %11s %13s %11s\n", "server", "RSS before", "peak", "extra peak", "RSS "+bigLineAfter.String()+" on", "extra then")
		for _, t := range targets {
			if t.selectLimited() {
				fmt.Printf("%-14s -  (select cannot watch descriptors of 1024 or more; see stage5 epoll)\n", t.name)
				continue
			}
			row, err := b.bigLine(t)
			if err != nil {
				return fmt.Errorf("bigline, %s: %w", t.name, err)
			}
			fmt.Println(row)
		}
		fmt.Println()
	}
	if b.wants("stalled") {
		fmt.Printf("stalled: a flood of 1 KiB lines from one sender to one healthy receiver and %d stalled readers\n", stalledReaders)
		fmt.Printf("(SO_RCVBUF 4 KiB, never read), until the server has dropped every stalled reader; -max-pending %s,\n", size(stalledMaxSize))
		fmt.Printf("%d × that is %s\n\n", stalledReaders, size(stalledReaders*stalledMaxSize))
		fmt.Printf("%-14s %8s %9s %11s %11s %11s %13s %13s %11s\n", "server", "dropped", "flooded", "RSS before", "peak", "extra peak", "/max-pending", "/(N×max-p.)", "RSS 1s on")
		for _, t := range targets {
			row, err := b.stalled(t)
			if err != nil {
				return fmt.Errorf("stalled, %s: %w", t.name, err)
			}
			fmt.Println(row)
		}
		fmt.Println()
	}
	return nil
}

// memoryAfter reads the server's memory, waits, and reads it again.
func memoryAfter(pid int, wait time.Duration) (now, later tester.Memory, err error) {
	if now, err = tester.ReadMemory(pid); err != nil {
		return now, later, err
	}
	time.Sleep(wait)
	later, err = tester.ReadMemory(pid)
	return now, later, err
}

func (b *bench) bigLine(t target) (string, error) {
	s, err := b.start(t, bigLineReceivers)
	if err != nil {
		return "", err
	}
	defer s.stop()
	conns, err := b.dial(s, &net.Dialer{Timeout: harness.Deadline}, bigLineReceivers+1, bigLineReceivers+1)
	if err != nil {
		return "", err
	}
	defer closeConns(conns)
	sender, receivers := conns[0], conns[1:]
	before, err := tester.ReadMemory(s.pid())
	if err != nil {
		return "", err
	}

	line := strings.Repeat("x", bigLineSize-2) + "\r\n"
	var wg sync.WaitGroup
	var failed atomic.Value
	for _, c := range receivers {
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
	peak, later, err := memoryAfter(s.pid(), bigLineAfter)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%-14s %11s %11s %11s %13s %11s", t.name, size(before.RSS), size(peak.Peak),
		extra(peak.Peak-before.RSS, before.Peak >= peak.Peak), size(later.RSS), extra(later.RSS-before.RSS, false)), nil
}

func (b *bench) stalled(t target) (string, error) {
	t.args = append(t.args[:len(t.args):len(t.args)], "-max-pending", fmt.Sprint(stalledMaxSize))
	s, err := b.start(t, stalledReaders+2)
	if err != nil {
		return "", err
	}
	defer s.stop()
	conns, err := b.dial(s, &net.Dialer{Timeout: harness.Deadline}, 2, 2)
	if err != nil {
		return "", err
	}
	defer closeConns(conns)
	stalled, err := b.dial(s, &tester.SmallReceiveBuffer, stalledReaders, stalledReaders+2)
	if err != nil {
		return "", err
	}
	defer closeConns(stalled)
	sender, healthy := conns[0], conns[1]
	before, err := tester.ReadMemory(s.pid())
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
	dropped := func() int { // of the stalled readers, every other client being there still
		held, _ := s.connected()
		return stalledReaders + 2 - held
	}
	batch := []byte(strings.Repeat(strings.Repeat("f", 1022)+"\r\n", 64)) // 64 KiB
	sent := int64(0)
	deadline := time.Now().Add(2 * time.Minute)
	for sent < stalledFloodMost && dropped() < stalledReaders {
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
	peak, later, err := memoryAfter(s.pid(), time.Second)
	if err != nil {
		return "", err
	}
	grew := peak.Peak - before.RSS
	return fmt.Sprintf("%-14s %4d/%-3d %9s %11s %11s %11s %12.2fx %12.2fx %11s", t.name, dropped(), stalledReaders, size(sent),
		size(before.RSS), size(peak.Peak), extra(grew, before.Peak >= peak.Peak),
		float64(grew)/stalledMaxSize, float64(grew)/(stalledReaders*stalledMaxSize), size(later.RSS)), nil
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
