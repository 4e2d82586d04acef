//go:build !linux && !darwin

// Stage 3 works on raw sockets through golang.org/x/sys/unix, which exists only on Unix.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage3-nonblocking: this stage needs Linux or macOS (on Windows, use WSL)")
	os.Exit(1)
}
