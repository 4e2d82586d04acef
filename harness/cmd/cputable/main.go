// Command cputable is the reproducible version of the article's `top` screenshots: it runs
// each stage's server with a few idle clients connected and prints how much of a core each
// one burns while nothing is happening.
//
//	go run ./harness/cmd/cputable
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
)

var stages = []string{"stage1-blocking", "stage2-recvline", "stage3-nonblocking", "stage4-broadcast", "stage5-select"}

func main() {
	harness.SetUsage("cputable", "cputable starts each stage's server with idle clients connected and prints how much of a core each burns while nothing happens.")
	clients := flag.Int("clients", 5, "idle clients connected to each server")
	window := flag.Duration("window", time.Second, "how long to measure each server")
	flag.Parse()
	if *clients < 1 || *window <= 0 {
		fmt.Fprintln(os.Stderr, "cputable: -clients must be at least 1 and -window positive")
		os.Exit(2)
	}
	// Ctrl-C kills the server being measured and deletes the programs built for the table.
	harness.CleanUpOnSignal()

	fmt.Printf("CPU used while idle, %d clients connected, over %v (%s/%s, %d cores)\n\n",
		*clients, *window, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	for _, stage := range stages {
		use, err := idleCPU(stage, *clients, *window)
		if err != nil {
			if harness.Stopping() {
				select {} // interrupted: the signal handler cleans up and exits
			}
			fmt.Fprintf(os.Stderr, "cputable: %s: %v\n", stage, err)
			harness.RemoveBuilds()
			os.Exit(1)
		}
		fmt.Println(Row(stage, use))
	}
	harness.RemoveBuilds()
}

// Row formats one line of the table: the stage, its share of one core and a bar, one '#' per
// 2% of a core.
func Row(stage string, use float64) string {
	bar := int(use*50 + 0.5)
	return fmt.Sprintf("%-20s %6.1f%% |%s", stage, use*100, strings.Repeat("#", min(bar, 50)))
}

// idleCPU starts the stage, connects clients that never send anything, and measures.
func idleCPU(stage string, clients int, window time.Duration) (float64, error) {
	server, err := harness.StartServerProcess(stage)
	if server != nil {
		defer server.Kill()
	}
	if err != nil {
		return 0, err
	}
	for range clients {
		conn, err := net.DialTimeout("tcp", server.Addr, harness.Deadline)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
	}
	return harness.MeasureCPU(server.Process, window)
}
