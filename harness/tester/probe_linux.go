package tester

import "net"

// portProbe listens the way Go does by default (SO_REUSEADDR set): on Linux that still fails
// on a port where any socket listens, and succeeds on one held only by connections waiting
// in TIME_WAIT.
var portProbe net.ListenConfig
