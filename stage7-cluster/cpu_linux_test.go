package main

import (
	"os"
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

// cpuUse measures the share of a core that process pid uses over d, from /proc.
func cpuUse(t *testing.T, pid int, d time.Duration) float64 {
	t.Helper()
	ticks := func() int {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		// The fields after the command's name, which is in parentheses and may hold spaces:
		// utime and stime are the 12th and 13th of them, in clock ticks (100 a second).
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		utime, _ := strconv.Atoi(fields[11])
		stime, _ := strconv.Atoi(fields[12])
		return utime + stime
	}
	before, start := ticks(), time.Now()
	time.Sleep(d)
	return float64(ticks()-before) / 100 / time.Since(start).Seconds()
}
