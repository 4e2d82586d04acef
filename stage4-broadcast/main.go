//go:build linux || darwin

// Stage 4: broadcast — the stage 3 loop, and every line a client sends goes to every other
// client. A chat server at last, still with a CPU core that never rests.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// client is one connected client.
type client struct {
	fd int // the socket, a plain file descriptor: from here on we talk to the kernel directly
	// pending holds the bytes received after the last "\n": the start of a line whose end has
	// not arrived yet. TCP delivers a stream of bytes, so one read may return half a line, or
	// several lines, whatever the client's writes were.
	pending      []byte
	disconnected bool // the client left during this pass; it is removed at the end of the pass
}

// server is the loop's state, shared by the functions below.
type server struct {
	listener int
	clients  []*client
	buffer   []byte    // one buffer for every read: an idle client costs no buffer
	batch    []byte    // the lines of one read, framed for the others
	out      io.Writer // standard output
}

// errLeft is why a client that went away by itself is disconnected.
var errLeft = errors.New("left")

func main() {
	name := filepath.Base(os.Args[0])
	log.SetFlags(0)
	log.SetPrefix(name + ": ")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n\n"+
			"Stage 4 of the chat workshop: the polling loop of stage 3, relaying every\n"+
			"line a client sends to every other client.\n\nFlags:\n", name)
		flag.PrintDefaults()
	}
	addr := flag.String("addr", ":5555", "where to listen, host:port (port 0 picks a free port)")
	reuseAddr := flag.Bool("reuseaddr", true, "set SO_REUSEADDR (false: see \"address already in use\")")
	flag.Parse()
	if flag.NArg() > 0 {
		log.Printf("unexpected argument %q: every setting is a flag, such as -addr :5556", flag.Arg(0))
		os.Exit(2)
	}

	listener, port, err := listenNonblocking(*addr, *reuseAddr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v%s", *addr, reason(err), hint(*addr, err, *reuseAddr))
	}
	s := &server{listener: listener, buffer: make([]byte, 64<<10), out: os.Stdout}
	fmt.Fprintf(s.out, "Server: started. Listening to new connections on port %d...\n", port)

	// The whole server is this loop, and it never waits for anything. When nobody connects and
	// nobody talks, it asks every socket again at once, over and over, and keeps a CPU core
	// busy doing nothing: watch the server in top while no client says a word. That is the
	// lesson of this stage; stage 5 lets the kernel wake the server only when there is work.
	for {
		s.acceptClient()
		for _, sender := range s.clients {
			s.receive(sender)
		}
		// Drop the clients that left, in one pass after the loop over them. The article deleted
		// them one index at a time with del, which moves the last element into the hole, so a
		// second deletion in the same pass could remove the wrong client or run off the end.
		s.clients = slices.DeleteFunc(s.clients, func(c *client) bool { return c.disconnected })
	}
}

// listenNonblocking opens a listening TCP socket on addr and puts it in non-blocking mode; it
// returns the socket and the port it is bound to (the real one when addr asks for port 0).
//
// Go's net package has no non-blocking mode to offer: its sockets are non-blocking underneath,
// but a goroutine that calls Accept or Read is parked until there is something to return, so
// from the program's side every call blocks. To poll sockets ourselves, as the article does with
// nativesockets and setBlocking(false), we step down to the system calls that net.Listen makes
// for us: socket, setsockopt, bind, listen.
func listenNonblocking(addr string, reuseAddr bool) (listener, port int, err error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, 0, err
	}
	// An IPv4 address (or no host at all, which means every IPv4 interface, 0.0.0.0) needs an
	// AF_INET socket; an IPv6 address needs an AF_INET6 one.
	domain, sockaddr := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: tcpAddr.Port})
	if ip := tcpAddr.AddrPort().Addr().Unmap(); ip.Is4() {
		sockaddr = &unix.SockaddrInet4{Port: tcpAddr.Port, Addr: ip.As4()}
	} else if ip.Is6() {
		domain, sockaddr = unix.AF_INET6, &unix.SockaddrInet6{Port: tcpAddr.Port, Addr: ip.As16()}
	}

	listener, err = unix.Socket(domain, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, 0, err
	}
	defer func() {
		if err != nil {
			unix.Close(listener)
		}
	}()
	// Close-on-exec, as the net package does for every socket: a program we started would
	// otherwise inherit the listener.
	unix.CloseOnExec(listener)
	// SO_REUSEADDR, as in stage 2: a quick restart must not fail with "address already in use".
	// A new socket starts without it, so -reuseaddr=false brings the failure back.
	if reuseAddr {
		if err = unix.SetsockoptInt(listener, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return -1, 0, err
		}
	}
	if err = unix.Bind(listener, sockaddr); err != nil {
		return -1, 0, err
	}
	if err = unix.Listen(listener, unix.SOMAXCONN); err != nil {
		return -1, 0, err
	}
	// The article's setBlocking(false): from now on Accept returns at once, with EAGAIN when
	// nobody is waiting, instead of stopping the program until somebody connects.
	if err = unix.SetNonblock(listener, true); err != nil {
		return -1, 0, err
	}
	bound, err := unix.Getsockname(listener)
	if err != nil {
		return -1, 0, err
	}
	switch bound := bound.(type) {
	case *unix.SockaddrInet4:
		port = bound.Port
	case *unix.SockaddrInet6:
		port = bound.Port
	}
	return listener, port, nil
}

// acceptClient accepts a client if one is waiting, and returns at once if none is.
func (s *server) acceptClient() {
	fd, _, err := unix.Accept(s.listener)
	if err != nil {
		// EAGAIN (EWOULDBLOCK is the same number on Linux and macOS): nobody is waiting. Any
		// other error (ECONNABORTED: the client gave up while it waited in the queue; EMFILE:
		// out of file descriptors) is about this attempt only: try again on the next pass.
		return
	}
	// On Linux an accepted socket does not inherit the listener's non-blocking mode (on macOS
	// it does): without this, the first read from a quiet client would stop the whole loop.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return
	}
	unix.CloseOnExec(fd)
	s.clients = append(s.clients, &client{fd: fd})
	fmt.Fprintln(s.out, "Server: client connected")
}

// receive reads what sender has sent, relays every complete line to the others,
// and disconnects sender if it has left.
func (s *server) receive(sender *client) {
	lines, err := s.readLines(sender)
	for _, message := range lines {
		fmt.Fprintf(s.out, "Server: received from client: %s\n", message)
	}
	s.broadcast(sender, lines)
	if err != nil && err != unix.EAGAIN {
		s.disconnect(sender)
	}
}

// readLines reads what the client has sent since the last pass, without waiting, and returns
// the complete lines it now has, each without its "\n" or "\r\n". err is EAGAIN when there
// was nothing to read, and errLeft once the client has left; the start of a line it never
// finished is dropped with it.
func (s *server) readLines(c *client) (lines [][]byte, err error) {
	n, err := unix.Read(c.fd, s.buffer)
	if err == unix.EAGAIN {
		// Nothing new: in blocking mode the read would have stopped the loop here.
		return nil, err
	}
	if err != nil || n == 0 {
		// 0 bytes: the client closed its end. An error such as ECONNRESET: the connection broke.
		return nil, errLeft
	}
	c.pending = append(c.pending, s.buffer[:n]...)
	rest := c.pending
	for {
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			break
		}
		lines = append(lines, bytes.TrimSuffix(rest[:end], []byte("\r")))
		rest = rest[end+1:]
	}
	if len(rest) == 0 {
		rest = c.pending[:0] // all used: the next read fills the buffer again from its start
	}
	c.pending = rest
	return lines, nil
}

// broadcast sends lines, each ending in "\r\n", to every client except their sender. The lines
// of one read are framed once, into one batch, and each client gets the batch in one write.
//
// A write to a non-blocking socket copies what fits into the kernel's send buffer for that
// client and returns at once. A client that does not read fills its buffer, and then the write
// takes only part of the batch, or nothing at all (EAGAIN): the rest is lost here, and that
// client gets a cut line or none. Stage 5 keeps what could not be written in an output queue
// per client and sends it once the socket can take more.
func (s *server) broadcast(sender *client, lines [][]byte) {
	if len(lines) == 0 {
		return
	}
	s.batch = s.batch[:0]
	for _, message := range lines {
		s.batch = append(append(s.batch, message...), '\r', '\n')
	}
	for _, receiver := range s.clients {
		if receiver == sender || receiver.disconnected {
			continue
		}
		// Errors are ignored: a client whose connection broke is noticed, and removed, when
		// the loop next reads from it. (Writing to a broken connection fails with EPIPE; the
		// SIGPIPE that comes with it kills C programs, but Go ignores it on sockets.)
		_, _ = unix.Write(receiver.fd, s.batch)
	}
}

// disconnect closes c's connection; the loop forgets c at the end of the pass.
func (s *server) disconnect(c *client) {
	// A client that left has sent no message: the article's listing printed an empty
	// "received" line here, because it lacked a continue.
	unix.Close(c.fd)
	c.disconnected = true
	fmt.Fprintln(s.out, "Server: client disconnected")
}

// reason cuts an address error down to its cause: "missing port in address" rather than
// "address 127.0.0.1: missing port in address", since our message already names the address.
// An error from a system call, such as "address already in use", is its cause already.
func reason(err error) error {
	var addrErr *net.AddrError
	if errors.As(err, &addrErr) {
		return errors.New(addrErr.Err)
	}
	return err
}

// hint adds a guess to "address already in use". Without SO_REUSEADDR it is most likely stage
// 2's lesson: a connection from the last run still waits in TIME_WAIT. With it, a server
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
