package harness

import (
	"flag"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// Most tests here wait on sockets and timers, not on a CPU, so many of them may run side
	// by side even on two cores: go test's default of one per core would leave the machine
	// idle while they wait. A -parallel given on the command line still wins.
	parallelGiven := false
	flag.Visit(func(f *flag.Flag) { parallelGiven = parallelGiven || f.Name == "test.parallel" })
	if !parallelGiven {
		flag.Set("test.parallel", "8")
	}
	code := m.Run()
	RemoveBuilds()
	os.Exit(code)
}
