//go:build !linux && !darwin

// Stage 2 sets SO_REUSEADDR through golang.org/x/sys/unix, which exists only on Unix.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage2-recvline: this stage needs Linux or macOS (on Windows, use WSL)")
	os.Exit(1)
}
