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
	"unicode"
	"unicode/utf8"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "address of the chat server (host:port)")
	name := flag.String("name", "", "send `NAME` as the first line, for a server that asks who you are\n(stage 7)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), "Usage: receiver [flags]\n"+
			"Prints every message the chat server sends; it sends nothing but its -name\n"+
			"(clients/sender does).\n")
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
	// A server that asks who you are (stage 7) takes the first line as your name; its question
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

// visible returns someone else's text safe to print, by the rule the server's log follows
// (printMessage in stage 5's log.go; harness/clients_test.go checks that the two agree): tab
// and printable characters (unicode.IsPrint: letters of every script, marks, digits,
// punctuation, symbols, emoji, the ASCII space) stay as they are; a control byte or a byte that
// is not UTF-8 is shown as \xNN, any other character as \uNNNN. Printed as they came, control
// bytes and C1 controls (U+009B works as ESC [ on some terminals) could clear our screen, move
// our cursor or recolour our terminal; a right-to-left override (U+202E) or isolate (U+2067)
// would show the rest of the line reversed, so that "evil \u202egnp.exe" reads "evil exe.png";
// and zero-width and other format characters (U+200B, U+2060, U+FEFF) would hide inside words
// and names.
func visible(message string) string {
	var shown strings.Builder
	for len(message) > 0 {
		r, size := utf8.DecodeRuneInString(message)
		switch {
		case r == '\t' || unicode.IsPrint(r) && !(r == utf8.RuneError && size == 1):
			shown.WriteString(message[:size])
		case size == 1: // a control byte, or a byte that is not UTF-8
			fmt.Fprintf(&shown, `\x%02x`, message[0])
		case r <= 0xffff:
			fmt.Fprintf(&shown, `\u%04x`, r)
		default:
			fmt.Fprintf(&shown, `\U%08x`, r)
		}
		message = message[size:]
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
