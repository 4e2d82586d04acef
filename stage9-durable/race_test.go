//go:build race

package main

// Under the race detector, the servers the tests start are built with it too: the loop and the
// NATS goroutines share the inbox and the registry's requests, and this is where a missing lock
// would show.
func init() {
	buildFlags = append(buildFlags, "-race")
	whileThrottled = 0.10 // cpu_linux_test.go
}
