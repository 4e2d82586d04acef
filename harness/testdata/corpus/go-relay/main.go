// A chat relay: a goroutine reads each client, and each client has a buffered channel of
// outgoing lines drained by its own writer goroutine. A client that falls too far behind is
// disconnected instead of holding everyone up.
package main

import (
	"bufio"
	"log"
	"net"
	"os"
	"sync"
)

const queueLen = 1 << 16 // lines a client may fall behind before it is dropped

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
			log.Printf("client %s is too slow, dropping it", c.conn.RemoteAddr())
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
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break
		}
		broadcast(c, line)
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
