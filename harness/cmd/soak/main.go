// Command soak churns connections against a chat server and checks that no line was lost: a
// few receivers stay connected for the whole run while senders connect, send numbered lines
// and leave in every way a client can (gracefully, closing at once, with a last line that has
// no terminator, without a word). It reports deliveries checked, lost, reordered, duplicated
// and corrupted, then checks that the server holds as many descriptors as before and sleeps.
//
//	go run ./harness/cmd/soak                       # stage 6 with select, then with epoll, 10 s each
//	go run ./harness/cmd/soak -seconds 60 -poller epoll
//	go run ./harness/cmd/soak -addr 127.0.0.1:5555 -server-pid 12345   # a server already running
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/cmd/internal/cli"
)

func main() {
	cli.SetUsage("soak", "soak churns connections against a chat server (stage 6, or one at -addr) and checks that every receiver got every line, in order, once.")
	native := harness.NativePoller()
	d := DefaultSoakConfig
	seconds := flag.Float64("seconds", d.Duration.Seconds(), "how long senders churn, per server")
	addr := flag.String("addr", "", "soak the server already running at this host:port instead of starting stage 6")
	serverPID := flag.Int("server-pid", 0, "with -addr: the server's process id, to check its descriptors and CPU afterwards (Linux)")
	pollers := flag.String("poller", "select,"+native, "start stage 6 with each of these pollers in turn: select, "+native)
	receivers := flag.Int("receivers", d.Receivers, "connections that stay for the whole run and check every line")
	senders := flag.Int("senders", d.Senders, "sender connections open at once")
	maxConnections := flag.Int("max-connections", d.MaxConnections, "stop after this many sender connections in all")
	maxLines := flag.Int("max-lines", d.MaxLines, "most lines one sender connection sends (at most 60)")
	seed := flag.Uint64("seed", d.Seed, "seed of the random choices (how each sender leaves, how many lines, how they are cut)")
	flag.Parse()
	if flag.NArg() > 0 || *seconds <= 0 || *receivers < 1 || *senders < 1 || *maxConnections < 1 || *maxLines < 1 || *maxLines > 60 {
		fmt.Fprintln(os.Stderr, "soak: -seconds must be positive, -receivers, -senders and -max-connections at least 1, -max-lines 1 to 60, and no arguments")
		os.Exit(2)
	}
	config := d
	config.Duration = time.Duration(*seconds * float64(time.Second))
	config.Receivers, config.Senders, config.MaxConnections, config.MaxLines, config.Seed = *receivers, *senders, *maxConnections, *maxLines, *seed
	cli.CleanUpOnSignal()

	failed := false
	if *addr != "" {
		config.Addr, config.ServerPID = *addr, *serverPID
		fmt.Printf("soak: the server at %s for %v\n", *addr, config.Duration)
		report, err := Soak(config)
		failed = check(report, err)
	} else {
		for _, poller := range strings.Split(*pollers, ",") {
			fmt.Printf("soak: stage 6 with -poller %s for %v\n", poller, config.Duration)
			server, err := harness.StartServerProcess("stage6-hardened", "-poller", poller, "-quiet")
			if err != nil {
				if server != nil {
					server.Kill()
				}
				cli.Fatal("%v", err)
			}
			config.Addr, config.ServerPID = server.Addr, server.PID()
			report, err := Soak(config)
			failed = check(report, err) || failed
			server.Kill() // its log is complete once it has ended
			summary, ok := SoakServerLog(server.Process)
			fmt.Print(fitted(summary))
			failed = failed || !ok
			fmt.Println()
		}
	}
	harness.RemoveBuilds()
	if failed {
		os.Exit(1)
	}
}

// check prints the report and says whether the run failed.
func check(report *SoakReport, err error) bool {
	if err != nil {
		cli.Fatal("%v", err)
	}
	fmt.Print(report)
	return report.Failed()
}
