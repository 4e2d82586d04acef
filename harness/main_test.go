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
	// Built with the race detector (as CI runs them), the tests' own code is several times
	// slower, and a test that gives a server a second (a shutdown's grace) or counts what the
	// server does while the test reacts would measure the detector: one test at a time then.
	if !parallelGiven {
		parallel := "8"
		if raceDetector {
			parallel = "1"
		}
		flag.Set("test.parallel", parallel)
	}
	code := m.Run()
	RemoveBuilds()
	os.Exit(code)
}
