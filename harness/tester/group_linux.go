package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// GroupCPUMeasured reports whether this system lets the checks measure a server's CPU use.
const GroupCPUMeasured = true

// groupProcesses calls f with the fields of /proc/<pid>/stat after the command name (state
// first) of every process in process group pgid that has not ended.
func groupProcesses(pgid int, f func(fields []string)) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // it ended meanwhile
		}
		text := string(data)
		end := strings.LastIndexByte(text, ')')
		if end < 0 {
			continue
		}
		// fields[0] is field 3 (state), fields[2] field 5 (pgrp).
		fields := strings.Fields(text[end+1:])
		if len(fields) < 13 || fields[2] != strconv.Itoa(pgid) || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		f(fields)
	}
}

// groupAlive reports whether any process of group pgid still runs (zombies do not count: in
// a container nobody may ever reap them).
func groupAlive(pgid int) bool {
	alive := false
	groupProcesses(pgid, func([]string) { alive = true })
	return alive
}

// groupCPU is the user plus system CPU time used so far by every process in group pgid.
func groupCPU(pgid int) (time.Duration, error) {
	var ticks int64
	groupProcesses(pgid, func(fields []string) {
		utime, _ := strconv.ParseInt(fields[11], 10, 64)
		stime, _ := strconv.ParseInt(fields[12], 10, 64)
		ticks += utime + stime
	})
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// acceptQueue returns how many connections to port wait in its listening socket's accept
// queue, not yet accepted by the server: for a socket in the LISTEN state, /proc/net/tcp's
// rx_queue column is that count. ok is false if no listening socket on port is found.
func acceptQueue(port int) (waiting int, ok bool) {
	suffix := fmt.Sprintf(":%04X", port)
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			// sl local_address rem_address st tx_queue:rx_queue ...; st 0A is LISTEN.
			if len(fields) < 5 || fields[3] != "0A" || !strings.HasSuffix(fields[1], suffix) {
				continue
			}
			_, rx, _ := strings.Cut(fields[4], ":")
			n, err := strconv.ParseInt(rx, 16, 64)
			if err != nil {
				continue
			}
			waiting += int(n)
			ok = true
		}
	}
	return waiting, ok
}
