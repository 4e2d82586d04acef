//go:build linux || darwin

// Stage 6: a room you do not trust — the stage 5 relay, hardened against what a real room
// does to it: floods, running out of descriptors, a paused terminal, leavers' last lines, and
// a Ctrl-C that must not cut off what is still queued. Each hazard has a file of its own.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
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
	output       outputQueue // what its socket has not taken yet: queue.go
	disconnected bool        // the client left, or was dropped, during this pass
	budget       budget      // what it may send before it is read more slowly: flood.go
}

// server is the loop's state, shared by the functions below.
type server struct {
	options          options // the flags: flags.go
	poller           poller
	listener         int
	clients          map[int]*client // by descriptor: events name descriptors
	writers          []*client       // clients to write to at the end of this pass
	leavers          []*client       // clients whose write failed in this pass: see lastwords.go
	waitingForBudget []*client       // clients over their budget, not read for now: see flood.go
	buffer           []byte          // one buffer for every read: an idle client costs no buffer
	out              *bytes.Buffer   // what this pass printed: see log.go
	log              *logWriter
	descriptors      descriptors // for running out of them: see descriptors.go
	shutdown         shutdown    // signals, and shutting down: see shutdown.go
}

// errLeft is why a client that went away by itself is disconnected.
var errLeft = errors.New("left")

func main() {
	options := parseFlags() // flags.go
	listener, port, err := listenNonblocking(options.addr, options.reuseAddr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v%s", options.addr, reason(err), hint(options.addr, err, options.reuseAddr))
	}
	poller, err := newPoller(options.poller)
	s := &server{options: options, poller: poller, listener: listener, clients: map[int]*client{},
		buffer: make([]byte, 64<<10), out: &bytes.Buffer{}, log: startLog(os.Stdout)}
	if err == nil {
		err = s.prepare() // the listener, the signal pipe, a spare descriptor: see descriptors.go
	}
	if err != nil {
		log.Fatalf("cannot start waiting for sockets: %v", err)
	}
	fmt.Fprintf(s.out, "Server: started. Listening to new connections on port %d...\n", port)
	fmt.Fprintf(s.out, "Server: waiting for sockets with %s (-poller %[1]s)\n", options.poller)

	for {
		// The lesson of stage 5: sleep in the kernel, with no timeout, until a socket is
		// ready. An idle server uses no CPU at all. (Only a shutdown, or a client waiting for
		// its budget, sets a timeout: see beforeWait.)
		events, err := s.poller.wait(s.beforeWait())
		if err == unix.EINTR {
			continue // a signal cut the sleep short: sleep again
		}
		if err != nil {
			log.Fatalf("cannot wait for sockets: %v", err)
		}
		listenerReady := false
		for _, e := range events {
			sender := s.clients[e.fd]
			switch {
			case e.fd == s.listener:
				listenerReady = true // accepted last, below
			case sender == nil:
				// Disconnected earlier in this pass: a stale event, ignore it. Accepting last
				// keeps a new client from taking over its descriptor number before now. (Or
				// the pipe that signals arrive on: it is read before the next wait.)
			default:
				if e.readable {
					s.receive(sender)
				}
				if e.writable && !sender.disconnected {
					s.writers = append(s.writers, sender) // its socket has room again
				}
			}
		}
		s.flush()
		for i := 0; listenerReady && i < acceptsPerPass; i++ {
			listenerReady = s.acceptClient()
		}
	}
}

// acceptsPerPass bounds the connections one pass accepts: a storm of connections must not
// hold up everyone else, so the rest wait in the queue for the next pass, as in Redis.
const acceptsPerPass = 64

// beforeWait is the hardening's work between two passes, and returns how long the next wait
// may last, in milliseconds (-1: for ever).
func (s *server) beforeWait() (timeout int) {
	s.relayLastWords() // lastwords.go: clients whose write failed are read to the end, then let go
	s.onSignal()       // shutdown.go: the signals that arrived, through a pipe the poller watches
	s.finishShutdown() // shutdown.go: while shutting down, close each client that has its output
	s.roomAgain()      // descriptors.go: once a client has left a full server, new ones may come
	s.handLog()        // log.go: what the last pass printed goes out, and never holds the loop up
	s.readAgain()      // flood.go: clients whose budget has come back are read again
	return s.timeout() // shutdown.go: a shutdown's last second, or a client waiting for budget
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

// acceptClient accepts a client if one is waiting, and reports whether to try again.
func (s *server) acceptClient() (again bool) {
	fd, _, err := unix.Accept(s.listener)
	if err != nil {
		// EAGAIN: nobody else is waiting. ECONNABORTED: the client gave up while it waited in
		// the queue; try the next one. EMFILE: out of descriptors (descriptors.go).
		return err == unix.ECONNABORTED || err == unix.EINTR || s.outOfDescriptors(err)
	}
	// On Linux an accepted socket does not inherit the listener's non-blocking mode (on macOS
	// it does): without this, the first read from a quiet client would stop the whole loop.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return true
	}
	unix.CloseOnExec(fd)
	// A pass already gathers a client's lines into one write: Nagle's delay would only add latency.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := s.poller.add(fd); err != nil {
		turnAway(fd) // descriptors.go
		fmt.Fprintf(s.out, "Server: refused a connection: %v\n", err)
		return true
	}
	s.clients[fd] = &client{fd: fd}
	fmt.Fprintln(s.out, "Server: client connected")
	return true
}

// receive reads what sender has sent, relays every complete line to the others, and
// disconnects sender if it has left or broke a limit.
func (s *server) receive(sender *client) {
	lines, err := s.readLines(sender)
	for _, message := range lines {
		s.printMessage(message)
	}
	s.broadcast(sender, lines)
	if err != nil && err != unix.EAGAIN {
		s.disconnect(sender, err)
	}
}

// readLines reads what the client has sent since the last pass, without waiting, and returns
// the complete lines it now has, each without its "\n" or "\r\n". err is EAGAIN when there
// was nothing to read, errLeft once the client has left, or says why the server drops it.
func (s *server) readLines(c *client) (lines [][]byte, err error) {
	n, err := unix.Read(c.fd, s.buffer[:s.allowance(c)]) // flood.go: a budget is the size of a read
	if err == unix.EAGAIN {
		// Nothing new: in blocking mode the read would have stopped the loop here.
		return nil, err
	}
	if err != nil || n == 0 {
		// 0 bytes: the client closed its end. An error such as ECONNRESET: the connection broke.
		// A client that shut only its writing half reads as 0 bytes too, at every pass: it has
		// left as well, or the loop would spin on it. A last line with no "\n" before the end
		// of the stream is a line all the same, also when the stream ends in a reset (a client
		// that closes with unread input resets the connection instead of closing it in order).
		if len(c.pending) > 0 {
			lines = append(lines, bytes.TrimSuffix(c.pending, []byte("\r")))
		}
		return lines, errLeft
	}
	s.spend(c, n) // flood.go: what a read took comes out of the budget, so it is taken here
	c.pending = append(c.pending, s.buffer[:n]...)
	rest := c.pending
	for {
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			break
		}
		line := bytes.TrimSuffix(rest[:end], []byte("\r"))
		if len(line) > s.options.maxLine {
			return lines, errTooLong(s.options.maxLine) // limits.go
		}
		lines = append(lines, line)
		rest = rest[end+1:]
	}
	if len(rest) > s.options.maxLine+1 { // limits.go says why as soon as it is too long
		return lines, errTooLong(s.options.maxLine)
	}
	if len(rest) == 0 {
		rest = c.pending[:0] // all used: the next read fills the buffer again from its start
	}
	c.pending = rest
	return lines, nil
}

// broadcast queues lines, each ending in "\r\n", for every client except their sender.
// Nothing is written yet: that happens once per client at the end of the pass. The lines of
// one read are framed once, into one batch, and every receiver's queue gets that one batch.
func (s *server) broadcast(sender *client, lines [][]byte) {
	if len(lines) == 0 {
		return
	}
	var batch []byte
	for _, message := range lines {
		batch = append(append(batch, message...), '\r', '\n')
	}
	for _, receiver := range s.clients {
		if receiver == sender {
			continue
		}
		if first, err := receiver.output.add(batch, s.options.maxPending); err != nil {
			s.disconnect(receiver, err)
		} else if first {
			s.writers = append(s.writers, receiver)
		}
	}
}

// flush gives each client on the writers list its write (queue.go). Clients with nothing to
// send are not even looked at.
func (s *server) flush() {
	for _, c := range s.writers {
		rewatch, err := c.output.writeTo(c.fd)
		if err != nil {
			s.leavers = append(s.leavers, c) // it has left, but its last words may wait unread
		} else if rewatch {
			s.poller.watchWrites(c.fd, c.output.watching)
		}
	}
	s.writers = s.writers[:0]
}

// disconnect closes c's connection and forgets c, saying why if the server decided it.
func (s *server) disconnect(c *client, why error) {
	s.sayGoodbye(c, why) // limits.go
	// Stop watching the descriptor before closing it: select fails on a closed descriptor,
	// and the next accept may give the same number to a new client.
	s.poller.remove(c.fd)
	unix.Close(c.fd)
	delete(s.clients, c.fd)
	c.disconnected = true
	c.output = outputQueue{} // the batches can be freed, and a flush finds nothing to write
	if why == errLeft {
		fmt.Fprintln(s.out, "Server: client disconnected")
	} else {
		fmt.Fprintf(s.out, "Server: client disconnected (%v)\n", why)
	}
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
