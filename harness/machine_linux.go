package harness

import (
	"os"
	"strings"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// Machine describes this machine in one line, for the header of a benchmark's report.
func Machine() string { return tester.Machine() }

// LoadAverage is the machine's load average over the last 1, 5 and 15 minutes, from
// /proc/loadavg, or "unknown": how busy the machine was, beside a benchmark's figures.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) >= 3 {
		return strings.Join(fields[:3], " ")
	}
	return "unknown"
}
