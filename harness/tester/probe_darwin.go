package tester

import (
	"net"
	"syscall"
)

// portProbe listens without SO_REUSEADDR: on macOS, as on the BSDs, that option lets a socket
// bind 127.0.0.1:PORT beside another that listens on all addresses, which would hide it.
var portProbe = net.ListenConfig{Control: func(_, _ string, raw syscall.RawConn) error {
	var err error
	raw.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0) })
	return err
}}
