//go:build linux || darwin

package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// options are the command line's flags, checked.
type options struct {
	addr, poller        string
	maxLine, maxPending int
	maxRate, maxBurst   int
	reuseAddr, quiet    bool
	nats, natsListen    string        // cluster.go: the NATS servers to use, or where to run one
	natsURLFile         string        // natsurl.go: where the NATS server run here writes its URL
	lease               time.Duration // names.go: how long a name outlives its server's silence
}

// parseFlags reads the flags. A misused one gets one line that says why and exit status 2,
// as the flag package does for a flag it does not know.
func parseFlags() options {
	name := filepath.Base(os.Args[0])
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"The chat server with names: every line says who sent it (Protohackers'\n"+
			"Budget Chat), plus /msg NAME text for one person and /who for the names.\n"+
			"One room on many servers: it joins NATS at -nats, or runs NATS itself.\n\nFlags:\n", name)
		flag.PrintDefaults()
	}
	var o options
	flag.StringVar(&o.addr, "addr", ":5555", "where to listen, host:port (port 0 picks a free port)")
	flag.BoolVar(&o.reuseAddr, "reuseaddr", true, "set SO_REUSEADDR (false: see \"address already in use\")")
	flag.StringVar(&o.poller, "poller", "select", "how to wait: select or "+nativePollerName)
	flag.IntVar(&o.maxLine, "max-line", 65536, "longest line a client may send, in bytes")
	flag.IntVar(&o.maxPending, "max-pending", 4<<20, "most bytes a client may leave unread, or be dropped")
	flag.IntVar(&o.maxRate, "max-rate", 65536, "bytes a client may send per second, 0 for no limit")
	flag.IntVar(&o.maxBurst, "max-burst", 256<<10, "bytes a client may send at once, before -max-rate")
	flag.BoolVar(&o.quiet, "quiet", false, "do not print every message (for benchmarks)")
	flag.StringVar(&o.nats, "nats", "", "NATS servers to join, comma-separated, such as\nnats://SECRET@host:4222 (default: $NATS_URL; neither: run one here)")
	flag.StringVar(&o.natsListen, "nats-listen", ":4222", "where the NATS server this one runs listens, host:port")
	flag.StringVar(&o.natsURLFile, "nats-url-file", "", "a file to write the URLs that join the NATS server this one\nruns, for its owner only; its secret is used again on a restart")
	flag.DurationVar(&o.lease, "lease", defaultLease, "how long this server's names outlive its silence (on a NATS\ncluster, longer than an election: 20s)")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		usageError("unexpected argument %q: every setting is a flag, such as -addr :5556", flag.Arg(0))
	case o.poller != "select" && o.poller != nativePollerName:
		usageError("-poller %s is not available on %s: choose select or %s", o.poller, runtime.GOOS, nativePollerName)
	case o.maxLine <= 0:
		usageError("-max-line must be at least 1 byte, not %d", o.maxLine)
	case o.maxPending <= 0:
		usageError("-max-pending must be at least 1 byte, not %d", o.maxPending)
	case o.maxRate < 0:
		usageError("-max-rate must be 0 (no limit) or a number of bytes per second, not %d", o.maxRate)
	case o.maxBurst <= 0:
		usageError("-max-burst must be at least 1 byte, not %d", o.maxBurst)
	case o.lease < time.Second:
		usageError("-lease must be at least 1s, not %v", o.lease)
	}
	return o
}

func usageError(format string, args ...any) {
	log.Printf(format, args...)
	os.Exit(2)
}
