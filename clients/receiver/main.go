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
	"unicode/utf8"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "address of the chat server (host:port)")
	name := flag.String("name", "", "send `NAME` as the first line, for a server that asks who you are (stage 6)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), "Usage: receiver [flags]\n"+
			"Prints every message the chat server sends; it sends nothing but its -name (clients/sender does).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		// The same as a wrong flag: one line on stderr and exit 2.
		fmt.Fprintf(os.Stderr, "receiver: unexpected argument %q (receiver -h shows the flags)\n", flag.Arg(0))
		os.Exit(2)
	}

	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("cannot connect to %s: %v", *addr, reason(err))
	}
	fmt.Printf("Client: connected to server on address %s\n", *addr)
	// A server that asks who you are (stage 6) takes the first line as your name; its question
	// arrives as a message like any other.
	if *name != "" {
		if _, err := io.WriteString(conn, *name+"\r\n"); err != nil {
			fail("lost the connection to %s: %v", *addr, reason(err))
		}
	}

	// The server ends every message with "\r\n"; a line ending in a bare "\n" is taken too.
	messages := bufio.NewReader(conn)
	for {
		line, err := messages.ReadString('\n')
		if line != "" {
			fmt.Printf("Message: %s\n", visible(trimLineEnd(line)))
		}
		// End of stream is how TCP says the other side closed the connection in good order:
		// for a receiver that is simply the end of its work. A server that drops us says why
		// in a last line first, and that line was printed above like any other.
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

// visible returns someone else's bytes safe to print: whatever is not printable text is shown
// as \xNN, one per byte, as the server's log shows it. That is the control bytes (below 0x20,
// and 0x7f) except tab, the C1 controls U+0080 to U+009F (some terminals obey U+009B as they
// obey ESC [), and bytes that are not valid UTF-8. Printed as they are, any client could
// clear our screen, move our cursor or recolour our terminal with an escape sequence.
func visible(message string) string {
	var shown strings.Builder
	for i := 0; i < len(message); {
		r, size := utf8.DecodeRuneInString(message[i:])
		if r == utf8.RuneError && size == 1 || r < 0x20 && r != '\t' || r >= 0x7f && r <= 0x9f {
			for _, b := range []byte(message[i : i+size]) {
				fmt.Fprintf(&shown, `\x%02x`, b)
			}
		} else {
			shown.WriteString(message[i : i+size])
		}
		i += size
	}
	return shown.String()
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
