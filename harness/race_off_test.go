//go:build !race

package harness

// raceDetector says the tests were built with the race detector, as CI runs them.
const raceDetector = false
