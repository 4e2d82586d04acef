// Protohackers 3, Budget Chat: a goroutine per connection and a mutex around the room.
package main

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"os"
	"strings"
	"sync"
)

type user struct {
	name string
	conn net.Conn
}

var (
	mu    sync.Mutex
	users = map[*user]bool{}
)

// send writes to every user but skip; the caller holds mu.
func send(skip *user, format string, args ...any) {
	for u := range users {
		if u != skip {
			fmt.Fprintf(u.conn, format, args...)
		}
	}
}

func validName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func handle(conn net.Conn) {
	defer conn.Close()
	fmt.Fprintln(conn, "Welcome to budgetchat! What shall I call you?")
	scanner := bufio.NewScanner(conn)
	if !scanner.Scan() {
		return
	}
	name := strings.TrimSpace(scanner.Text())
	if !validName(name) {
		fmt.Fprintln(conn, "Invalid name: use letters and digits only.")
		return
	}
	me := &user{name: name, conn: conn}

	mu.Lock()
	var names []string
	for u := range users {
		names = append(names, u.name)
	}
	fmt.Fprintf(conn, "* The room contains: %s\n", strings.Join(names, ", "))
	send(nil, "* %s has entered the room\n", name)
	users[me] = true
	mu.Unlock()

	for scanner.Scan() {
		text := strings.TrimRight(scanner.Text(), "\r")
		mu.Lock()
		send(me, "[%s] %s\n", name, text)
		mu.Unlock()
	}

	mu.Lock()
	delete(users, me)
	send(nil, "* %s has left the room\n", name)
	mu.Unlock()
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
	log.Printf("budget chat on %s", ln.Addr())
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Print(err)
			continue
		}
		go handle(conn)
	}
}
