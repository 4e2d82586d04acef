// The chat server of go-gopl-chat with the one habit the lesson rules out, kept from the
// book: the broadcaster sends each line to every client, its sender included.
package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"
)

// backlog is how many lines a client may fall behind before it is dropped.
const backlog = 1 << 16

type client chan string

type message struct {
	from client // nil for the server's own announcements
	text string
}

var (
	entering = make(chan client)
	leaving  = make(chan client)
	messages = make(chan message)
)

func broadcaster() {
	clients := map[client]bool{}
	for {
		select {
		case msg := <-messages:
			for cli := range clients {
				select {
				case cli <- msg.text:
				default: // too far behind: its writer closes the connection
					delete(clients, cli)
					close(cli)
				}
			}
		case cli := <-entering:
			clients[cli] = true
		case cli := <-leaving:
			if clients[cli] {
				delete(clients, cli)
				close(cli)
			}
		}
	}
}

func handleConn(conn net.Conn) {
	ch := make(client, backlog)
	go clientWriter(conn, ch)

	who := conn.RemoteAddr().String()
	ch <- "You are " + who
	messages <- message{text: who + " has arrived"}
	entering <- ch

	input := bufio.NewScanner(conn)
	for input.Scan() {
		messages <- message{from: ch, text: who + ": " + input.Text()}
	}
	leaving <- ch
	messages <- message{text: who + " has left"}
	conn.Close()
}

func clientWriter(conn net.Conn, ch <-chan string) {
	w := bufio.NewWriter(conn)
	for msg := range ch {
		fmt.Fprintln(w, msg)
		// Write out once nothing more is waiting: one system call per line is slow.
		if len(ch) == 0 && w.Flush() != nil {
			break
		}
	}
	conn.Close()
	for range ch { // let the broadcaster finish with this client
	}
}

func main() {
	port := "5555"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("chat server listening on %s", listener.Addr())
	go broadcaster()
	for {
		conn, err := listener.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go handleConn(conn)
	}
}
