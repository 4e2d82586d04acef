//go:build linux || darwin

package tester

// Stage 6 is the stage 5 relay made fit for a room nobody vouches for. Its checks judge what a
// client can see of that: the basics still hold, and a hostile room does not break them.
func stage6Checks() []Check {
	return []Check{broadcast, framing, stalled}
}
