//go:build !linux

// Command relaymem reads a server's memory from /proc, so it runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "relaymem: reading a server's memory needs Linux's /proc; on macOS or Windows, run it in a Linux VM or WSL")
	os.Exit(1)
}
