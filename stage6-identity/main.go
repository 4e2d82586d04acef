//go:build linux || darwin

// Stage 6: identity — each client joins with a name, and every line says who sent it and to whom.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// client is one connected client.
type client struct {
	fd int // the socket, a plain file descriptor: from here on we talk to the kernel directly
	// pending holds the bytes received after the last "\n": the start of a line whose end has
	// not arrived yet. TCP delivers a stream of bytes, so one read may return half a line, or
	// several lines, whatever the client's writes were.
	pending []byte
	// output holds the lines for this client that its socket has not taken yet: a client that
	// reads slowly must neither make the others wait nor lose a line.
	output         []byte
	watchingWrites bool // output is waiting for room in the socket: the poller tells us when
	disconnected   bool // the client left, or was dropped, during this pass
	// name is what the client answered to the welcome, and "" until then: a client without a
	// name has not joined the room yet, and hears nothing of it.
	name string
}

// server is the loop's state, shared by the functions below.
type server struct {
	poller       poller
	listener     int
	clients      map[int]*client // by descriptor: events name descriptors
	joined       []*client       // the clients with a name, in the order they joined
	writers      []*client       // clients to write to at the end of this pass
	out          *bufio.Writer   // standard output, written once per pass
	buffer       []byte          // one buffer for every read: an idle client costs no buffer
	batch        []byte          // the lines of one read, framed for the others
	quiet        bool
	maxLine      int
	maxPending   int
	acceptPaused bool // out of descriptors: the listener is not watched until a client leaves
}

// errLeft is why a client that went away by itself is disconnected (no reason is printed).
var errLeft = errors.New("left")

func main() {
	log.SetFlags(0)
	log.SetPrefix(filepath.Base(os.Args[0]) + ": ")
	addr := flag.String("addr", ":5555", "address to listen on, host:port (port 0 picks a free port)")
	pollerName := flag.String("poller", "select", "how to wait: select or "+nativePollerName)
	maxLine := flag.Int("max-line", 65536, "longest line a client may send, in bytes")
	maxPending := flag.Int("max-pending", 4<<20, "most bytes a client may leave unread, or be dropped")
	quiet := flag.Bool("quiet", false, "do not print every message (for benchmarks)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: %s [flags]\n"+
			"A chat server where everyone has a name: Protohackers' Budget Chat, plus /msg and /who.\n",
			filepath.Base(os.Args[0]))
		flag.PrintDefaults()
	}
	flag.Parse()

	poller, err := newPoller(*pollerName)
	if err != nil {
		log.Print(err)
		os.Exit(2) // like any misused flag
	}
	listener, port, err := listenNonblocking(*addr)
	if err != nil {
		log.Fatalf("cannot listen on %s: %v", *addr, reason(err))
	}
	stop, err := pipeOnSignal()
	if err == nil {
		err = errors.Join(poller.add(listener), poller.add(stop))
	}
	if err != nil {
		log.Fatalf("cannot start waiting for sockets: %v", err)
	}
	s := &server{poller: poller, listener: listener, clients: map[int]*client{},
		out: bufio.NewWriterSize(os.Stdout, 64<<10), buffer: make([]byte, 64<<10),
		quiet: *quiet, maxLine: *maxLine, maxPending: *maxPending}
	fmt.Fprintf(s.out, "Server: started. Listening to new connections on port %d...\n", port)

	for {
		// What the loop printed goes out once per pass, not once per line.
		s.out.Flush()
		// The lesson of this stage: sleep in the kernel, with no timeout, until a socket is
		// ready. An idle server uses no CPU at all.
		events, err := s.poller.wait()
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
			case e.fd == stop:
				s.shutdown()
			case e.fd == listener:
				listenerReady = true // accepted last, below
			case sender == nil:
				// Disconnected earlier in this pass: a stale event, ignore it. Accepting last
				// keeps a new client from taking over its descriptor number before now.
			default:
				if e.readable {
					lines, err := s.readLines(sender)
					s.route(sender, lines)
					if err != nil {
						s.disconnect(sender, err)
					}
				}
				if e.writable && !sender.disconnected {
					s.writers = append(s.writers, sender) // its socket has room again
				}
			}
		}
		for listenerReady {
			listenerReady = s.acceptClient()
		}
		s.flush() // after accepting, so that a newcomer's welcome goes out in this pass
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
func listenNonblocking(addr string) (listener, port int, err error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, 0, err
	}
	// An IPv4 address (or no host at all, which means every IPv4 interface, 0.0.0.0) needs an
	// AF_INET socket; an IPv6 address needs an AF_INET6 one.
	domain := unix.AF_INET
	var sockaddr unix.Sockaddr
	if ip4 := tcpAddr.IP.To4(); ip4 != nil || tcpAddr.IP == nil {
		inet4 := &unix.SockaddrInet4{Port: tcpAddr.Port}
		copy(inet4.Addr[:], ip4)
		sockaddr = inet4
	} else {
		domain = unix.AF_INET6
		inet6 := &unix.SockaddrInet6{Port: tcpAddr.Port}
		copy(inet6.Addr[:], tcpAddr.IP.To16())
		sockaddr = inet6
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
	if err = unix.SetsockoptInt(listener, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return -1, 0, err
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
	switch err {
	case nil:
	case unix.ECONNABORTED, unix.EINTR:
		return true // the client gave up while it waited in the queue: try the next one
	case unix.EMFILE, unix.ENFILE:
		// Out of file descriptors. The connection stays queued, so the listener would be
		// ready again at once, forever: stop watching it until a client leaves.
		fmt.Fprintf(s.out, "Server: cannot accept connections: %v; waiting for a client to leave\n", err)
		s.poller.remove(s.listener)
		s.acceptPaused = true
		return false
	default:
		return false // EAGAIN: nobody else is waiting
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
		unix.Close(fd)
		fmt.Fprintf(s.out, "Server: refused a connection: %v\n", err)
		return true
	}
	s.clients[fd] = &client{fd: fd}
	fmt.Fprintln(s.out, "Server: client connected")
	s.send(s.clients[fd], "Welcome to the chat! What is your name?\n")
	return true
}

// readLines reads what the client has sent and returns the complete lines it now has, each
// without its "\n" or "\r\n"; they stay valid until the next read from this client. err is
// errLeft once the client has left, or says why the server drops it.
func (s *server) readLines(c *client) (lines [][]byte, err error) {
	n, err := unix.Read(c.fd, s.buffer)
	if err == unix.EAGAIN {
		return nil, nil // nothing after all
	}
	if err != nil || n == 0 {
		// 0 bytes: the client closed its end. An error such as ECONNRESET: the connection broke.
		// A client that shut only its writing half reads as 0 bytes too, at every pass: it has
		// left as well, or the loop would spin on it.
		return nil, errLeft
	}
	c.pending = append(c.pending, s.buffer[:n]...)
	rest := c.pending
	for {
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			break
		}
		line := bytes.TrimSuffix(rest[:end], []byte("\r"))
		if len(line) > s.maxLine {
			return lines, fmt.Errorf("line longer than %d bytes", s.maxLine)
		}
		lines = append(lines, line)
		rest = rest[end+1:]
	}
	// Drop an unfinished line as soon as it is too long (the +1 leaves room for a "\r" that
	// may end it): a client that sends without end cannot fill the server's memory.
	if len(rest) > s.maxLine+1 {
		return lines, fmt.Errorf("line longer than %d bytes", s.maxLine)
	}
	if len(rest) == 0 {
		rest = c.pending[:0] // all used: the next read fills the buffer again from its start
	}
	c.pending = rest
	return lines, nil
}

// broadcast queues lines, each as "[NAME] message\n", for every joined client except their
// sender. Nothing is written yet: that happens once per client at the end of the pass. The
// lines of one read are framed once, into one batch, and the batch is added to each client's
// output: one trip over all the clients per read, not per line, which matters in a flood.
//
// Stage 6's lines end in "\n" alone, where stages 4 and 5 sent "\r\n": Protohackers' Budget
// Chat protocol, which stage 6 speaks, ends every line with "\n", and its clients compare whole
// lines. Our own clients and nc accept either.
func (s *server) broadcast(sender *client, lines [][]byte) {
	if len(lines) == 0 {
		return
	}
	s.batch = s.batch[:0]
	for _, message := range lines {
		s.batch = append(append(append(append(s.batch, '['), sender.name...), "] "...), message...)
		s.batch = append(s.batch, '\n')
	}
	for _, receiver := range s.joined {
		if receiver == sender || receiver.disconnected {
			continue // disconnected: dropped while this loop ran (see leave)
		}
		if len(receiver.output) == 0 {
			// It joins the writers now. With output already there it is on the list, or the
			// poller will say when its socket has room.
			s.writers = append(s.writers, receiver)
		}
		receiver.output = append(receiver.output, s.batch...)
		if len(receiver.output) > s.maxPending {
			s.disconnect(receiver, fmt.Errorf("not reading: more than %d bytes pending", s.maxPending))
		}
	}
}

// flush gives each client on the writers list one write, whatever the number of lines that
// wait for it, as Redis does; clients with nothing to send are not even looked at.
func (s *server) flush() {
	for _, c := range s.writers {
		if c.disconnected {
			continue
		}
		n, err := unix.Write(c.fd, c.output)
		if err != nil && err != unix.EAGAIN {
			s.disconnect(c, errLeft) // EPIPE, ECONNRESET: the connection broke
			continue
		}
		if n == len(c.output) && cap(c.output) > 64<<10 {
			c.output = nil // all sent, after a backlog: give the big buffer back
		} else if n == len(c.output) {
			c.output = c.output[:0] // all sent: the next lines reuse the buffer from its start
		} else {
			c.output = c.output[max(n, 0):] // EAGAIN (n is -1) or a partial write: the rest waits
		}
		// Watch for room in the socket only while output waits: a socket with room is always
		// writable, so watching an idle client would wake the loop at once, forever.
		if waiting := len(c.output) > 0; waiting != c.watchingWrites {
			c.watchingWrites = waiting
			s.poller.watchWrites(c.fd, waiting)
		}
	}
	s.writers = s.writers[:0]
}

// disconnect closes c's connection and forgets c, saying why if the server decided it.
func (s *server) disconnect(c *client, why error) {
	if c.disconnected {
		return // dropped already, while its own lines were being routed
	}
	// Stop watching the descriptor before closing it: select fails on a closed descriptor,
	// and the next accept may give the same number to a new client.
	s.poller.remove(c.fd)
	unix.Close(c.fd)
	delete(s.clients, c.fd)
	c.disconnected = true
	if c.name != "" {
		s.leave(c, why)
	} else if why == errLeft {
		fmt.Fprintln(s.out, "Server: client disconnected")
	} else {
		fmt.Fprintf(s.out, "Server: client disconnected (%v)\n", why)
	}
	if s.acceptPaused {
		s.acceptPaused = false // a descriptor is free again
		s.poller.add(s.listener)
	}
}

// route handles the lines of one read, in order. A client's first line is its name; after
// that, /msg and /who are commands, and every other line is a message for the room. A run of
// messages between two commands still goes out as one batch.
func (s *server) route(sender *client, lines [][]byte) {
	for len(lines) > 0 && !sender.disconnected {
		if sender.name == "" {
			s.join(sender, lines[0])
			lines = lines[1:]
			continue
		}
		if isCommand(lines[0]) {
			s.printMessage(sender, lines[0])
			s.command(sender, lines[0])
			lines = lines[1:]
			continue
		}
		messages := 1
		for messages < len(lines) && !isCommand(lines[messages]) {
			messages++
		}
		for _, message := range lines[:messages] {
			s.printMessage(sender, message)
		}
		s.broadcast(sender, lines[:messages])
		lines = lines[messages:]
	}
}

// join takes a client's first line as its name. With a legal name that nobody in the room
// has, the client joins: the others hear of it, and it hears who is there. Otherwise it is
// told why and disconnected, and nobody else hears anything about it.
func (s *server) join(c *client, name []byte) {
	if !legalName(name) {
		s.refuse(c, "* Sorry, a name is 1 to 32 letters and digits.\n",
			fmt.Errorf(`illegal name "%s"`, printable(name)))
		return
	}
	if s.named(string(name)) != nil {
		s.refuse(c, "* Sorry, the name "+string(name)+" is taken.\n", fmt.Errorf(`name "%s" is taken`, name))
		return
	}
	others := s.names() // before c joins: the newcomer's list does not include itself
	c.name = string(name)
	s.joined = append(s.joined, c)
	fmt.Fprintf(s.out, "Server: %s joined\n", c.name)
	s.announce(c, "* "+c.name+" has entered the room\n")
	if others == "" {
		s.send(c, "* The room is empty\n")
	} else {
		s.send(c, "* The room contains: "+others+"\n")
	}
}

// legalName reports whether name is 1 to 32 ASCII letters or digits, as Budget Chat requires:
// a name that shows up in "[NAME] message" must not carry spaces, brackets or escape sequences.
func legalName(name []byte) bool {
	if len(name) < 1 || len(name) > 32 {
		return false
	}
	for _, b := range name {
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9') {
			return false
		}
	}
	return true
}

// refuse sends c one last line and disconnects it. The line is written at once, not at the end
// of the pass, since the connection closes now; a client that has just connected has all the
// room it needs in its socket.
func (s *server) refuse(c *client, line string, why error) {
	c.output = append(c.output, line...)
	unix.Write(c.fd, c.output)
	s.disconnect(c, why)
}

// leave takes a client that had joined out of the room and tells the others; disconnect calls
// it, whatever the reason.
func (s *server) leave(c *client, why error) {
	i := slices.Index(s.joined, c)
	// A new slice, not the old one edited in place: leave may be called while a loop such as
	// broadcast's walks over the old one, and that loop must not skip anyone.
	s.joined = slices.Concat(s.joined[:i], s.joined[i+1:])
	if why == errLeft {
		fmt.Fprintf(s.out, "Server: %s left\n", c.name)
	} else {
		fmt.Fprintf(s.out, "Server: %s left (%v)\n", c.name, why)
	}
	s.announce(c, "* "+c.name+" has left the room\n")
}

// send queues a line for c alone, as broadcast does for the room, with the same limit.
func (s *server) send(c *client, line string) {
	if len(c.output) == 0 {
		s.writers = append(s.writers, c)
	}
	c.output = append(c.output, line...)
	if len(c.output) > s.maxPending {
		s.disconnect(c, fmt.Errorf("not reading: more than %d bytes pending", s.maxPending))
	}
}

// announce queues a line for every joined client but one: the one it is about.
func (s *server) announce(about *client, line string) {
	for _, receiver := range s.joined {
		if receiver != about && !receiver.disconnected {
			s.send(receiver, line)
		}
	}
}

// isCommand reports whether a line is /who or /msg. Any other line, even one that starts with
// "/", is a message: Budget Chat has no commands, and its clients may say anything.
func isCommand(line []byte) bool {
	return string(line) == "/who" || string(line) == "/msg" || bytes.HasPrefix(line, []byte("/msg "))
}

// command carries out /who (the asker alone learns who is there, itself included) or
// /msg NAME text (NAME alone gets the text).
func (s *server) command(sender *client, line []byte) {
	if string(line) == "/who" {
		s.send(sender, "* Present: "+s.names()+"\n")
		return
	}
	// The name ends at the first space after "/msg ", and the text is all the rest.
	name, text, ok := strings.Cut(strings.TrimPrefix(string(line), "/msg "), " ")
	switch receiver := s.named(name); {
	case !ok || name == "":
		s.send(sender, "* Usage: /msg NAME text\n")
	case receiver == nil:
		s.send(sender, "* Nobody called "+name+" is here.\n")
	default:
		s.send(receiver, "["+sender.name+" -> you] "+text+"\n")
	}
}

// named returns the joined client called name, or nil.
func (s *server) named(name string) *client {
	for _, c := range s.joined {
		if c.name == name {
			return c
		}
	}
	return nil
}

// names lists the joined clients in the order they joined: "bob, charlie".
func (s *server) names() string {
	var names []string
	for _, c := range s.joined {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// pipeOnSignal returns a descriptor that becomes readable on SIGINT (Ctrl-C) or SIGTERM. Go
// delivers signals on a channel, but the loop sleeps in the poller, so a goroutine writes a
// byte into a pipe the poller watches: the classic self-pipe trick.
func pipeOnSignal() (int, error) {
	pipe := make([]int, 2)
	if err := unix.Pipe(pipe); err != nil {
		return -1, err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, unix.SIGINT, unix.SIGTERM)
	go func() {
		<-signals
		unix.Write(pipe[1], []byte{0})
	}()
	return pipe[0], nil
}

// shutdown stops accepting, closes every client (each reads the end of the stream) and exits.
func (s *server) shutdown() {
	unix.Close(s.listener)
	for _, c := range s.clients {
		unix.Close(c.fd)
	}
	fmt.Fprintln(s.out, "Server: shutting down")
	s.out.Flush()
	os.Exit(0)
}

// printMessage prints a message as the article does, but with control bytes as \xNN: a
// client must not drive the instructor's terminal with escape sequences. Other clients still
// get the bytes as they were sent.
func (s *server) printMessage(sender *client, message []byte) {
	if s.quiet {
		return
	}
	s.out.WriteString("Server: received from " + sender.name + ": ")
	s.out.WriteString(printable(message))
	s.out.WriteByte('\n')
}

// printable returns b with its control bytes as \xNN, for the log: a message, or a name that
// was refused.
func printable(text []byte) string {
	var out strings.Builder
	for _, b := range text {
		if b < ' ' && b != '\t' || b == 0x7f {
			fmt.Fprintf(&out, `\x%02x`, b)
		} else {
			out.WriteByte(b)
		}
	}
	return out.String()
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
