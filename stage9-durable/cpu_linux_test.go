package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIdle checks that a server in a room, with users of its own and of other servers, sleeps
// while nobody talks: its loop waits for sockets and news alike, and its name registry wakes
// only to refresh the names, every refreshEvery.
func TestIdle(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	s := startServers(t, 2, ns.ClientURL())
	join(t, s[0], "alice", "* The room is empty")
	knows(s[1:], "alice")
	join(t, s[1], "bob", "* The room contains: alice")
	knows(s[:1], "bob")
	// A busy machine may steal a sample: measure twice before failing.
	var use float64
	for range 2 {
		if use = cpuUse(t, s[0].cmd.Process.Pid, 3*time.Second); use < 0.02 {
			return
		}
	}
	t.Fatalf("an idle server used %.1f%% of a core, want under 2%%", 100*use)
}

// cpuUse measures the share of a core that process pid uses over d: the time its threads ran,
// to the nanosecond, from /proc/<pid>/task/*/schedstat. (The times of /proc/<pid>/stat come in
// ticks of 10 ms: over a second, a bound of 2% would be two of them, and one tick more or less
// is chance. A thread that ends meanwhile takes its time with it, which only makes the figure
// smaller: a spinning loop does not end.)
func cpuUse(t *testing.T, pid int, d time.Duration) float64 {
	t.Helper()
	ran := func() (sum time.Duration) {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/schedstat")
		if len(tasks) == 0 {
			t.Fatalf("process %d has no threads in /proc", pid)
		}
		for _, task := range tasks {
			if data, err := os.ReadFile(task); err == nil {
				ns, _ := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64)
				sum += time.Duration(ns)
			}
		}
		return sum
	}
	before, start := ran(), time.Now()
	time.Sleep(d)
	return float64(ran()-before) / float64(time.Since(start))
}

// TestFloodIdle checks that a client over its budget does not wake the loop over and over,
// beside the NATS news that wakes it too: while a sender on server A waits for its budget,
// A sleeps until the bucket has refilled (a timeout for the poller); once the sender has said
// everything and stays connected and silent, A and B sleep with no timeout at all. Both
// pollers.
func TestFloodIdle(t *testing.T) {
	t.Parallel()
	for _, poller := range []string{"select", nativePollerName} {
		t.Run(poller, func(t *testing.T) {
			t.Parallel()
			floodIdle(t, "-poller", poller)
		})
	}
}

func floodIdle(t *testing.T, pollerFlag ...string) {
	const rate, burst = 2000, 1000 // 50 lines of 100 bytes: 10 at once, then 20 a second
	ns := startNATS(t, -1)
	a := startServer(t, append(pollerFlag, "-nats", ns.ClientURL(), "-max-rate", strconv.Itoa(rate), "-max-burst", strconv.Itoa(burst))...)
	b := startServer(t, append(pollerFlag, "-nats", ns.ClientURL())...)
	receiver := join(t, b, "receiver", "* The room is empty")
	knows([]*process{a}, "receiver")
	sender := join(t, a, "sender", "* The room contains: receiver")
	receiver.expect("* sender has entered the room")

	var lines []string
	for i := range 50 {
		lines = append(lines, strings.TrimSuffix(floodLine(i), "\n")) // flood_test.go
	}
	sender.send(lines...)
	expect := func(from, to int) {
		for _, line := range lines[from:to] {
			receiver.expect("[sender] " + line)
		}
	}
	expect(0, 10)
	a.waitLog(`^Server: sender slowed down: sending faster than 2000 bytes/s$`)
	if use := cpuUse(t, a.cmd.Process.Pid, time.Second); use >= whileThrottled {
		t.Errorf("a server used %.1f%% of a core while a client waited for its budget, want under %.0f%%",
			100*use, 100*whileThrottled)
	}
	expect(10, 50)
	for _, s := range []*process{a, b} {
		var use float64
		for range 2 { // a busy machine may steal a sample
			if use = cpuUse(t, s.cmd.Process.Pid, 2*time.Second); use < 0.02 {
				break
			}
		}
		if use >= 0.02 {
			t.Errorf("a server used %.1f%% of a core after the flood, with its flooder silent, want under 2%%", 100*use)
		}
	}
}
