//go:build linux || darwin

package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// options are the command line's flags, checked.
type options struct {
	addr, poller        string
	maxLine, maxPending int
	maxRate, maxBurst   int
	quiet               bool
	nats, natsListen    string        // cluster.go: the NATS servers to use, or where to run one
	natsSecret          string        // cluster.go: the secret the NATS server run here asks for
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
			"The chat server with names (Protohackers' Budget Chat, plus /msg NAME text\n"+
			"and /who), and one room across many servers through NATS. Without -nats it\n"+
			"runs a NATS server for the room itself, on -nats-listen, and prints the -nats\n"+
			"URL, with its secret, that the others join with; with -nats it uses those,\n"+
			"and exits with status 2 if none answers at start.\n\nFlags:\n", name)
		flag.PrintDefaults()
	}
	var o options
	flag.StringVar(&o.addr, "addr", ":5555", "where to listen, host:port (port 0 picks a free port)")
	flag.StringVar(&o.poller, "poller", "select", "how to wait: select or "+nativePollerName)
	flag.IntVar(&o.maxLine, "max-line", 65536, "longest line a client may send, in bytes")
	flag.IntVar(&o.maxPending, "max-pending", 4<<20, "most bytes a client may leave unread, or be dropped")
	flag.IntVar(&o.maxRate, "max-rate", 65536, "bytes a client may send per second, 0 for no limit")
	flag.IntVar(&o.maxBurst, "max-burst", 256<<10, "bytes a client may send at once, before -max-rate")
	flag.BoolVar(&o.quiet, "quiet", false, "do not print every message (for benchmarks)")
	flag.StringVar(&o.nats, "nats", "", "NATS servers to join, comma-separated, such as\nnats://SECRET@host:4222 (none: run one here, on -nats-listen)")
	flag.StringVar(&o.natsListen, "nats-listen", ":4222", "where the NATS server this one runs listens, host:port\n(without -nats only)")
	flag.StringVar(&o.natsSecret, "nats-secret", "", "the secret the NATS server this one runs asks for, letters\nand digits (without -nats only; default: a new random one)")
	flag.DurationVar(&o.lease, "lease", 5*time.Second, "how long this server's names outlive its silence (on a NATS\ncluster, longer than an election: 20s)")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		usageError("unexpected argument %q: every setting is a flag, such as -addr :5556", flag.Arg(0))
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
	case o.natsSecret != "" && o.nats != "":
		usageError("-nats-secret is for the NATS server this one runs: with -nats, give the secret in the URL")
	case o.natsSecret != "" && (len(o.natsSecret) < 16 || strings.Trim(o.natsSecret, letters) != ""):
		usageError("-nats-secret must be 16 or more letters and digits, to go in a URL and not be guessed")
	}
	return o
}

func usageError(format string, args ...any) {
	log.Printf(format, args...)
	os.Exit(2)
}
