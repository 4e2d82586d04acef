//go:build !linux

// Command fanout is the relay benchmark; it drains its receivers with epoll and reads servers'
// CPU time from /proc, so it runs on Linux only (on Windows, use WSL).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "fanout: the benchmark needs Linux (epoll and /proc); on macOS or Windows, run it in a Linux VM or WSL")
	os.Exit(1)
}
