// Command receiver is the article's client_receiving: it prints every message the chat
// server sends and sends nothing (clients/sender does that half).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "address of the chat server (host:port)")
	flag.Parse()

	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("cannot connect to %s: %v", *addr, reason(err))
	}
	fmt.Printf("Client: connected to server on address %s\n", *addr)

	// The server ends every message with "\r\n"; a line ending in a bare "\n" is taken too.
	messages := bufio.NewReader(conn)
	for {
		line, err := messages.ReadString('\n')
		if line != "" {
			fmt.Printf("Message: %s\n", trimLineEnd(line))
		}
		// End of stream is how TCP says the other side closed the connection in good order:
		// for a receiver that is simply the end of its work.
		if errors.Is(err, io.EOF) {
			fmt.Println("Client: the server closed the connection")
			return
		}
		if err != nil {
			fail("lost the connection to %s: %v", *addr, reason(err))
		}
	}
}

// trimLineEnd removes the "\n" or "\r\n" that ends a line.
func trimLineEnd(line string) string {
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
}

// reason drops the "dial tcp 127.0.0.1:5555: connect:" that Go puts in front of the cause.
func reason(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		err = opErr.Err
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		err = sysErr.Err
	}
	return err
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "receiver: "+format+"\n", args...)
	os.Exit(1)
}
