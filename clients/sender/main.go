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
	name := flag.String("name", "", "send `NAME` as the first line, for a server that asks who you are\n(stage 7)")
	noNewline := flag.Bool("no-newline", false,
		"send lines without their \\r\\n, as the article's first client does\n"+
			"(shows stage 1's lesson)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), "Usage: sender [flags]\n"+
			"Sends every line you type to the chat server, and shows nothing it sends\n"+
			"(clients/receiver does).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		// The same as a wrong flag: one line on stderr and exit 2.
		fmt.Fprintf(os.Stderr, "sender: unexpected argument %q (sender -h shows the flags)\n", flag.Arg(0))
		os.Exit(2)
	}

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
	send := func(line string) error {
		_, err := io.WriteString(conn, line+terminator)
		return err
	}
	// A server that asks who you are (stage 7) takes the first line as your name.
	if *name != "" {
		if err := send(*name); err != nil {
			fail("lost the connection to %s: %v", *addr, reason(err))
		}
	}

	// The server may close the connection while this program waits for you to type, and only
	// a read can tell: a write to a closed connection often still succeeds. So a goroutine
	// reads the socket, dropping what arrives (showing it is the receiver's half), and says
	// how the stream ended: nil for an end of stream, the server closing in good order.
	serverDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, conn)
		serverDone <- err
	}()
	// Your lines come from a goroutine too, so that the loop can wait for both at once.
	typed := make(chan string)
	go readLines(os.Stdin, typed)

	for {
		fmt.Print("> ")
		select {
		case line, open := <-typed:
			if !open { // end of input: you are done
				fmt.Println()
				leave(conn.(*net.TCPConn), serverDone)
				return
			}
			if err := send(line); err != nil {
				// The connection is gone; the reader is about to learn how it ended.
				fmt.Println()
				select {
				case readErr := <-serverDone:
					serverGone(*addr, readErr)
				case <-time.After(time.Second):
					serverGone(*addr, err)
				}
			}
		case err := <-serverDone:
			fmt.Println()
			serverGone(*addr, err)
		}
	}
}

// readLines passes on every line read from stdin, without its terminator, and closes typed at
// the end of input. A last line without a newline is passed on too.
func readLines(stdin io.Reader, typed chan<- string) {
	input := bufio.NewReader(stdin)
	for {
		line, err := input.ReadString('\n')
		if line != "" {
			typed <- trimLineEnd(line)
		}
		if errors.Is(err, io.EOF) {
			close(typed)
			return
		}
		if err != nil {
			fail("cannot read standard input: %v", err)
		}
	}
}

// serverGone ends the program once the server has gone. An end of stream (err is nil) is the
// server closing the connection in good order, say because it was stopped: that is news, not
// a failure of this program. A reset or another error is.
func serverGone(addr string, err error) {
	if err == nil {
		fmt.Println("Client: the server closed the connection")
		os.Exit(0)
	}
	fail("lost the connection to %s: %v", addr, reason(err))
}

// leave closes the connection in good order. Closing a socket while unread data waits in it
// makes the kernel reset the connection, and a reset can throw away lines still on their
// way. So say we are done sending, let the reader drop what the server still sends until it
// closes its side too (or a second has passed), and only then close.
func leave(conn *net.TCPConn, serverDone <-chan error) {
	conn.CloseWrite()
	select {
	case <-serverDone:
	case <-time.After(time.Second):
	}
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
