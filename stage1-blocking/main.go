// Stage 1: a blocking server — it accepts one client and reads it in fixed 10-byte pieces, so
// the messages come out cut apart and run together.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	name := filepath.Base(os.Args[0])
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"Stage 1 of the chat workshop: a blocking server that accepts one client\n"+
			"and prints what it sends, 10 bytes at a time.\n\nFlags:\n", name)
		flag.PrintDefaults()
	}
	addr := flag.String("addr", ":5555", "where to listen, host:port (port 0 picks a free port)")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Printf("unexpected argument %q: every setting is a flag, such as -addr :5556", flag.Arg(0))
		os.Exit(2)
	}

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v%s", *addr, reason(err), hint(*addr, err))
	}
	defer listener.Close()
	// Print the port the kernel really gave us: with -addr :0 it is not the one we asked for.
	fmt.Printf("Server: started. Listening to new connections on port %d...\n", listener.Addr().(*net.TCPAddr).Port)

	// Accept blocks: the program waits here until a client connects, and accepts only this one.
	client, err := listener.Accept()
	if err != nil {
		log.Fatalf("cannot accept a client: %v", reason(err))
	}
	defer client.Close()
	fmt.Println("Server: client connected")

	piece := make([]byte, 10)
	for {
		// Nim's recv(10) waits until 10 bytes have arrived. Go's Read returns as soon as there
		// is anything at all, so it would print each message whole by luck of timing and hide
		// the lesson; io.ReadFull waits for all 10 bytes like Nim does. TCP is a stream of
		// bytes, not of messages: nothing tells us where one message ends and the next begins.
		n, err := io.ReadFull(client, piece)
		if n > 0 {
			// The real bytes, trailing spaces included ("sum dolor "): the article's listing
			// lost them when it was pasted.
			fmt.Printf("Server: received from client: %s\n", piece[:n])
		}
		if err != nil {
			// io.EOF: the client left on a 10-byte boundary. io.ErrUnexpectedEOF: it left in
			// the middle of a piece, and the shorter piece was printed above. Anything else
			// (a reset connection) also means the client is gone.
			break
		}
	}
	fmt.Println("Server: client disconnected")
}

// reason cuts an error from the net package down to its cause: "address already in use"
// rather than "listen tcp 127.0.0.1:5555: bind: address already in use", since our message
// already names the address.
func reason(err error) error {
	var addrErr *net.AddrError
	if errors.As(err, &addrErr) {
		return errors.New(addrErr.Err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Err
	}
	return err
}

// hint adds a guess to "address already in use": most often, a server from an earlier stage
// is still running in another terminal.
func hint(addr string, err error) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	next := ":5556"
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(port); err == nil {
			next = net.JoinHostPort(host, strconv.Itoa(n+1))
		}
	}
	return "\n(is another server still running? try -addr " + next + ")"
}
