package harness

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFanoutSmoke runs the benchmark's load generator briefly against stage 5 (both pollers)
// and the goroutine relay it is compared with: a few hundred messages, flooded by two senders
// and paced by one, must reach every receiver, each exactly once and in order. It checks
// counts, not speed; the benchmark itself is `go run ./harness/cmd/fanout`.
func TestFanoutSmoke(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("the fanout generator needs Linux (epoll and /proc)")
	}
	fanout := Binary(t, "harness/cmd/fanout")
	targets := []struct {
		name     string
		pkg      string
		args     []string
		protocol string
	}{
		{"stage5 select", "stage5-select", []string{"-poller", "select", "-quiet"}, "line"},
		{"stage5 epoll", "stage5-select", []string{"-poller", "epoll", "-quiet"}, "line"},
		{"gorelay", "harness/cmd/gorelay", []string{"-quiet"}, "line"},
		{"stage7", "stage7-identity", []string{"-poller", "epoll", "-quiet"}, "stage7"},
	}
	runs := []struct {
		name      string
		args      []string
		receivers int
		senders   int
		messages  int
	}{
		{"flood", []string{"-size", "32"}, 20, 2, 300},
		{"paced", []string{"-size", "64", "-rate", "20000"}, 10, 1, 200}, // 2,000 messages/s: 0.1 s
	}
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			needFolder(t, target.pkg)
			server := StartServer(t, target.pkg, target.args...)
			for _, run := range runs {
				args := append([]string{"-addr", server.Addr, "-protocol", target.protocol,
					"-server-pid", fmt.Sprint(server.PID()), "-stall", "5s",
					"-receivers", fmt.Sprint(run.receivers), "-senders", fmt.Sprint(run.senders),
					"-messages", fmt.Sprint(run.messages)}, run.args...)
				generator := Start(t, fanout, nil, args...)
				report := generator.NextLine(t)
				want := fmt.Sprintf("fanout: delivered %d of %d messages (%d sent to %d receivers by %d senders) in ",
					run.messages*run.receivers, run.messages*run.receivers, run.messages, run.receivers, run.senders)
				require.True(t, strings.HasPrefix(report, want), "%s run:\n got: %s\nwant: %s...\nstderr: %s",
					run.name, report, want, generator.Stderr())
				require.Equal(t, 0, generator.WaitExit(t, Deadline), "%s run", run.name)
			}
		})
	}
}
