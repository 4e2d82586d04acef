//go:build !linux

// Command clusterfanout measures what crossing NATS costs stage 7; it reads the machine's
// description from /proc, so it runs on Linux only (on Windows, use WSL).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "clusterfanout: it needs Linux; on macOS or Windows, run it in a Linux VM or WSL")
	os.Exit(1)
}
