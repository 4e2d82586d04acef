// A chat relay: a goroutine per connection that collects bytes into a line buffer, and a
// buffered channel of lines per client.
// Its bug: the line buffer is a fixed array of 1024 bytes, indexed without a bound check of
// its own, so a line longer than that panics (index out of range) and takes the whole
// process down.
package main

import (
	"bufio"
	"log"
	"net"
	"os"
	"sync"
)

const queueLen = 1 << 16

type client struct {
	conn net.Conn
	out  chan []byte
}

var (
	mu      sync.Mutex
	clients = map[*client]bool{}
)

func broadcast(from *client, line []byte) {
	mu.Lock()
	defer mu.Unlock()
	for c := range clients {
		if c == from {
			continue
		}
		select {
		case c.out <- line:
		default:
			delete(clients, c)
			close(c.out)
		}
	}
}

func writer(c *client) {
	for line := range c.out {
		if _, err := c.conn.Write(line); err != nil {
			break
		}
	}
	c.conn.Close()
}

func handle(conn net.Conn) {
	c := &client{conn: conn, out: make(chan []byte, queueLen)}
	mu.Lock()
	clients[c] = true
	mu.Unlock()
	go writer(c)
	log.Printf("client connected: %s", conn.RemoteAddr())

	r := bufio.NewReader(conn)
	var buf [1024]byte // nobody types a line longer than this
	n := 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			break
		}
		buf[n] = b
		n++
		if b == '\n' {
			line := make([]byte, n)
			copy(line, buf[:n])
			broadcast(c, line)
			n = 0
		}
	}

	mu.Lock()
	if clients[c] {
		delete(clients, c)
		close(c.out)
	}
	mu.Unlock()
	conn.Close()
	log.Printf("client disconnected: %s", conn.RemoteAddr())
}

func main() {
	port := "5555"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go handle(conn)
	}
}
