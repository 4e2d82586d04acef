// Command gorelay is the benchmark's yardstick for stage 5: the same chat relay written the way
// Go servers usually are, a goroutine per connection on the net package, with the runtime's
// own poller doing what stage 5 does by hand. It is not a stage; the fanout benchmark runs it.
//
//	go run ./harness/cmd/gorelay -addr 127.0.0.1:5555
//
// It speaks the workshop's protocol and prints the same lines as stage 5, and it is written to
// be as fast as plain Go allows: each read is framed into one batch of complete lines that all
// receivers share (no copy per receiver), every client has a bounded queue of such batches, a
// writer goroutine sends whatever is queued in one writev, and a client whose queue passes the
// limit is dropped instead of slowing anyone down.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// readSize is the read buffer a connection starts with. It stays small because every idle
// connection holds one; it grows only while a single long line needs it.
const readSize = 4096

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./harness/cmd/gorelay [flags]\n\n"+
			"gorelay is stage 5's relay written the usual Go way, a goroutine per\n"+
			"connection, for the fanout benchmark to compare with.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	addr := flag.String("addr", ":5555", "address to listen on (host:port)")
	quiet := flag.Bool("quiet", false, "do not log every message (for benchmarks)")
	maxLine := flag.Int("max-line", 64*1024, "longest line accepted, in bytes; a longer one\ndisconnects its sender")
	maxPending := flag.Int("max-pending", 4<<20, "bytes queued for a client before it is dropped\nas a slow reader")
	flag.Parse()

	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		fail("cannot listen on %s: %v", *addr, unwrap(err))
	}
	r := &relay{
		clients:    map[*client]struct{}{},
		log:        bufio.NewWriter(os.Stdout),
		quiet:      *quiet,
		maxLine:    *maxLine,
		maxPending: *maxPending,
	}
	r.logf("Server: started. Listening to new connections on port %d...", listener.Addr().(*net.TCPAddr).Port)
	r.flushLog()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-stop
		listener.Close()
		r.closeAll()
		r.flushLog()
		os.Exit(0)
	}()

	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				select {} // the signal handler is shutting down
			}
			// Out of descriptors, say: log it and keep serving the clients we hold.
			r.logf("Server: cannot accept: %v", unwrap(err))
			r.flushLog()
			continue
		}
		c := &client{conn: conn}
		r.add(c)
		go r.serve(c)
	}
}

// relay is the set of connected clients and the shared log.
type relay struct {
	mu      sync.RWMutex
	clients map[*client]struct{}

	logMu sync.Mutex
	log   *bufio.Writer

	quiet      bool
	maxLine    int
	maxPending int
}

// client is one connection and its queue of output.
type client struct {
	conn net.Conn

	mu      sync.Mutex
	queue   [][]byte // batches waiting to be written; shared with other clients, never modified
	queued  int      // bytes in queue
	writing bool     // a writer goroutine is running for this client
	dropped string   // why the relay closed the connection, if it did
}

func (r *relay) add(c *client) {
	r.mu.Lock()
	r.clients[c] = struct{}{}
	r.mu.Unlock()
	r.logf("Server: client connected")
	r.flushLog()
}

// serve is the connection's reader: it frames lines and hands each read's lines to broadcast
// as one batch, so a flood of small lines costs one queue operation per receiver per read,
// not per line.
func (r *relay) serve(c *client) {
	buf := make([]byte, readSize)
	have := 0 // bytes of an unfinished line at the start of buf
	reason := ""
	for {
		n, err := c.conn.Read(buf[have:])
		have += n
		var batch []byte
		start := 0
		for {
			end := bytes.IndexByte(buf[start:have], '\n')
			if end < 0 {
				break
			}
			line := buf[start : start+end]
			start += end + 1
			line = bytes.TrimSuffix(line, []byte{'\r'})
			if len(line) > r.maxLine {
				reason = fmt.Sprintf("line longer than %d bytes", r.maxLine)
				break
			}
			if !r.quiet {
				r.logf("Server: received from client: %s", line)
			}
			batch = append(append(batch, line...), '\r', '\n')
		}
		if len(batch) > 0 {
			r.broadcast(c, batch)
			if !r.quiet {
				r.flushLog()
			}
		}
		if reason != "" || err != nil {
			break
		}
		have = copy(buf, buf[start:have])
		switch {
		case have > r.maxLine+1: // even a "\r\n" now could not end it within the limit
			reason = fmt.Sprintf("line longer than %d bytes", r.maxLine)
		case have == len(buf): // one line fills the buffer: grow it
			buf = append(buf, make([]byte, len(buf))...)
		case len(buf) > readSize && have < readSize: // the long line is gone: give memory back
			buf = append(make([]byte, 0, readSize), buf[:have]...)[:readSize]
		}
		if reason != "" {
			break
		}
	}
	r.remove(c, reason)
}

// broadcast queues batch for every client but its sender. Queuing never blocks: a client that
// cannot take more is dropped, so one stalled reader never holds up the others.
func (r *relay) broadcast(from *client, batch []byte) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for c := range r.clients {
		if c != from {
			c.enqueue(batch, r.maxPending)
		}
	}
}

func (c *client) enqueue(batch []byte, maxPending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped != "" {
		return
	}
	if c.queued+len(batch) > maxPending {
		c.dropped = fmt.Sprintf("slow reader: more than %d bytes pending", maxPending)
		c.queue, c.queued = nil, 0
		c.conn.Close() // its reader goroutine sees the error and removes it
		return
	}
	c.queue = append(c.queue, batch)
	c.queued += len(batch)
	if !c.writing {
		// The writer exists only while there is something to write, so an idle connection
		// costs one goroutine, not two.
		c.writing = true
		go c.write()
	}
}

// write sends everything queued in one writev per round until the queue is empty.
func (c *client) write() {
	for {
		c.mu.Lock()
		batches := c.queue
		c.queue, c.queued = nil, 0
		if len(batches) == 0 || c.dropped != "" {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		buffers := net.Buffers(batches)
		if _, err := buffers.WriteTo(c.conn); err != nil {
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			c.conn.Close() // the reader goroutine reports the disconnection
			return
		}
	}
}

func (r *relay) remove(c *client, reason string) {
	r.mu.Lock()
	_, present := r.clients[c]
	delete(r.clients, c)
	r.mu.Unlock()
	c.mu.Lock()
	if c.dropped == "" {
		c.dropped = reason
	}
	reason = c.dropped
	if reason == "" {
		c.dropped = "disconnected"
	}
	c.mu.Unlock()
	c.conn.Close()
	if !present {
		return
	}
	if reason != "" {
		r.logf("Server: client disconnected (%s)", reason)
	} else {
		r.logf("Server: client disconnected")
	}
	r.flushLog()
}

func (r *relay) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.clients {
		c.conn.Close()
	}
}

func (r *relay) logf(format string, args ...any) {
	r.logMu.Lock()
	fmt.Fprintf(r.log, format+"\n", args...)
	r.logMu.Unlock()
}

// flushLog writes the log once per read batch rather than once per line.
func (r *relay) flushLog() {
	r.logMu.Lock()
	r.log.Flush()
	r.logMu.Unlock()
}

// unwrap drops the "listen tcp ..." prefix of a net.OpError, leaving the reason.
func unwrap(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		var syscallErr *os.SyscallError
		if errors.As(opErr.Err, &syscallErr) {
			return syscallErr.Err
		}
		return opErr.Err
	}
	return err
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "gorelay: "+format+"\n", args...)
	os.Exit(1)
}
