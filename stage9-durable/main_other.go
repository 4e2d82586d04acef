//go:build !linux && !darwin

// Stage 9 uses raw sockets and select, epoll or kqueue through golang.org/x/sys/unix.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage9-durable: this stage needs Linux or macOS (on Windows, use WSL)")
	os.Exit(1)
}
