//go:build !linux && !darwin

// Stage 4 works on raw sockets through golang.org/x/sys/unix, which exists only on Unix.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage4-broadcast: this stage needs Linux or macOS (on Windows, use WSL)")
	os.Exit(1)
}
