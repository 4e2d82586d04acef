//go:build linux || darwin

package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
)

// options are the command line's flags, checked.
type options struct {
	addr, poller        string
	maxLine, maxPending int
	reuseAddr, quiet    bool
}

// parseFlags reads the flags. A misused one gets one line that says why and exit status 2,
// as the flag package does for a flag it does not know.
func parseFlags() options {
	name := filepath.Base(os.Args[0])
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"Stage 5 of the chat workshop: one loop that sleeps in select (or epoll, kqueue)\n"+
			"until a socket is ready, and relays every line to every other client.\n\nFlags:\n", name)
		flag.PrintDefaults()
	}
	var o options
	flag.StringVar(&o.addr, "addr", ":5555", "where to listen, host:port (port 0 picks a free port)")
	flag.BoolVar(&o.reuseAddr, "reuseaddr", true, "set SO_REUSEADDR (false: see \"address already in use\")")
	flag.StringVar(&o.poller, "poller", "select", "how to wait: select or "+nativePollerName)
	flag.IntVar(&o.maxLine, "max-line", 65536, "longest line a client may send, in bytes")
	flag.IntVar(&o.maxPending, "max-pending", 4<<20, "most bytes a client may leave unread, or be dropped")
	flag.BoolVar(&o.quiet, "quiet", false, "do not print every message (for benchmarks)")
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
	}
	return o
}

func usageError(format string, args ...any) {
	log.Printf(format, args...)
	os.Exit(2)
}
