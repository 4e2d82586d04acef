package tester

// portProbe listens without SO_REUSEADDR: on macOS, as on the BSDs, that option lets a socket
// bind 127.0.0.1:PORT beside another that listens on all addresses, which would hide it.
var portProbe = withoutReuse
