//go:build !linux && !darwin

// Command check needs Unix process groups and sockets; see main.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "check: this command needs Linux or macOS (on Windows, use WSL)")
	os.Exit(2)
}
