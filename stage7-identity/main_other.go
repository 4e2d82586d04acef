//go:build !linux && !darwin

// Stage 7 uses raw sockets and select, epoll or kqueue through golang.org/x/sys/unix.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "stage7-identity: this stage needs Linux or macOS (on Windows, use WSL)")
	os.Exit(1)
}
