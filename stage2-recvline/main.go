//go:build linux || darwin

// Stage 2: framing by a delimiter — the server reads whole lines, and sets SO_REUSEADDR so that
// a quick restart finds its port free. It still serves only one client.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	name := filepath.Base(os.Args[0])
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"Stage 2 of the chat workshop: a blocking server that prints each line its\n"+
			"one client sends, and sets SO_REUSEADDR on its listening socket.\n\nFlags:\n", name)
		flag.PrintDefaults()
	}
	addr := flag.String("addr", ":5555", "where to listen, host:port (port 0 picks a free port)")
	reuseAddr := flag.Bool("reuseaddr", true, "set SO_REUSEADDR (false: see \"address already in use\")")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Printf("unexpected argument %q: every setting is a flag, such as -addr :5556", flag.Arg(0))
		os.Exit(2)
	}

	// A ListenConfig's Control function runs on the new socket before it is bound: the one
	// place where the net package lets us set socket options ourselves.
	config := net.ListenConfig{Control: func(network, address string, conn syscall.RawConn) error {
		return setReuseAddr(conn, *reuseAddr)
	}}
	listener, err := config.Listen(context.Background(), "tcp", *addr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v%s", *addr, reason(err), hint(*addr, err, *reuseAddr))
	}
	defer listener.Close()
	// Print the port the kernel really gave us: with -addr :0 it is not the one we asked for.
	fmt.Printf("Server: started. Listening to new connections on port %d...\n", listener.Addr().(*net.TCPAddr).Port)

	// Accept blocks: the program waits here until a client connects, and accepts only this one.
	// Later clients still connect, because the kernel completes their handshake and queues them
	// (the listen backlog), but this program never accepts them, so it never reads them.
	client, err := listener.Accept()
	if err != nil {
		log.Fatalf("cannot accept a client: %v", reason(err))
	}
	defer client.Close()
	fmt.Println("Server: client connected")

	// A line ends at "\n", with an optional "\r" before it (the article's clients send "\r\n");
	// the scanner strips both. An empty line is a message like any other: the article took an
	// empty recvLine for a disconnection, so a client that sent one was dropped. The end of the
	// stream, a reset, or a line longer than bufio.MaxScanTokenSize (64 KiB) ends the loop.
	lines := bufio.NewScanner(client)
	for lines.Scan() {
		fmt.Printf("Server: received from client: %s\n", lines.Text())
	}
	fmt.Println("Server: client disconnected")
}

// setReuseAddr sets SO_REUSEADDR on the listening socket before it is bound. Without it, the
// kernel refuses to bind a port that a connection closed a moment ago still holds (TIME_WAIT,
// up to a minute or two), and a restarted server fails with "address already in use".
//
// Go's net package already sets SO_REUSEADDR to 1 on every listening socket on Unix
// (setDefaultListenerSockopts, just before it calls Control), which is why a plain net.Listen
// never shows the article's error. We set it ourselves so that the option is in plain sight,
// and -reuseaddr=false sets it back to 0 to bring the error back.
func setReuseAddr(conn syscall.RawConn, on bool) error {
	value := 0
	if on {
		value = 1
	}
	var err error
	controlErr := conn.Control(func(fd uintptr) {
		err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, value)
	})
	if controlErr != nil {
		return controlErr
	}
	return err
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

// hint adds a guess to "address already in use". Without SO_REUSEADDR it is most likely this
// stage's lesson: a connection from the last run still waits in TIME_WAIT. With it, a server
// from an earlier stage is probably still running in another terminal.
func hint(addr string, err error, reuseAddr bool) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	if !reuseAddr {
		return "\n(a connection of the last run may still be in TIME_WAIT: see -reuseaddr)"
	}
	next := ":5556"
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(port); err == nil {
			next = net.JoinHostPort(host, strconv.Itoa(n+1))
		}
	}
	return "\n(is another server still running? try -addr " + next + ")"
}
