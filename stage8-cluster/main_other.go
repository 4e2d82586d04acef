//go:build !linux && !darwin

// Stage 8 uses raw sockets and select, epoll or kqueue through golang.org/x/sys/unix.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage8-cluster: this stage needs Linux or macOS (on Windows, use WSL)")
	os.Exit(1)
}
