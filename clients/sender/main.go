// Command sender is the article's client_sending: it sends every line you type to the chat
// server and never shows what the server sends (clients/receiver does that half).
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
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "address of the chat server (host:port)")
	noNewline := flag.Bool("no-newline", false,
		"send each line without its \\r\\n, like the article's first client (shows stage 1's lesson)")
	flag.Parse()

	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("cannot connect to %s: %v", *addr, reason(err))
	}
	fmt.Printf("Client: connected to server on address %s\n", *addr)

	// The terminator is what lets the server tell one message from the next. Without it, the
	// lines are one stream of bytes, and stage 1 shows what a reader makes of that.
	terminator := "\r\n"
	if *noNewline {
		terminator = ""
	}

	// This loop waits for you, never for the server: a server that went away is noticed only
	// when a send fails, and messages from others are never shown. Doing both at once needs
	// two waits at the same time, which is what clients/chat does.
	input := bufio.NewReader(os.Stdin)
	for {
		fmt.Print("> ")
		line, err := input.ReadString('\n')
		if line != "" {
			if _, sendErr := io.WriteString(conn, trimLineEnd(line)+terminator); sendErr != nil {
				fmt.Println()
				fail("lost the connection to %s: %v", *addr, reason(sendErr))
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail("cannot read standard input: %v", err)
		}
	}
	fmt.Println()

	// Closing a socket while unread data waits in it makes the kernel reset the connection,
	// and a reset can throw away lines still on their way. This client never reads, so say we
	// are done sending, read and drop what the server still sends until it closes its side
	// too (or a second has passed), and only then close.
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, conn)
	conn.Close()
}

// trimLineEnd removes the "\n" or "\r\n" that ends a line read from a terminal or a file.
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
	fmt.Fprintf(os.Stderr, "sender: "+format+"\n", args...)
	os.Exit(1)
}
