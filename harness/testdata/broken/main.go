//go:build linux || darwin

// Command broken is a small select relay, stage 5 in miniature, with one mistake that people
// writing their first chat server make, switched on by -mistake. The tests of the check command
// run it to prove that each mistake fails the check that names its lesson, with its hint:
//
//	-mistake none          a correct relay: it passes every check of stage 5
//	-mistake echo          broadcasts each line to its sender too
//	-mistake zero-timeout  polls select with a zero timeout, and burns a core while idle
//	-mistake first-line    relays the first line of each read and drops the rest of it
//	-mistake drop-unsent   writes straight to each socket and forgets what it did not take
//	-mistake blocking-writes waits for each socket to take the whole line, as the article's send
//	-mistake keep-watching once a client had to wait for room, asks about its writability forever
//	-mistake no-reuseaddr  listens without SO_REUSEADDR, so a quick restart fails
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

type client struct {
	fd      int
	pending []byte // the start of a line whose end has not come yet
	output  []byte // what the socket has not taken yet
	waited  bool   // its socket was once full (for -mistake keep-watching)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "host:port to listen on")
	mistake := flag.String("mistake", "none", "none, echo, zero-timeout, first-line, drop-unsent, blocking-writes, keep-watching or no-reuseaddr")
	flag.Parse()

	listener, port, err := listen(*addr, *mistake != "no-reuseaddr")
	if err != nil {
		fmt.Fprintf(os.Stderr, "broken: cannot listen on %s: %v\n", *addr, err)
		os.Exit(1)
	}
	fmt.Printf("Server: started. Listening to new connections on port %d...\n", port)

	clients := map[int]*client{}
	buffer := make([]byte, 64<<10)
	for {
		var readable, writable unix.FdSet
		readable.Set(listener)
		highest := listener
		for fd, c := range clients {
			readable.Set(fd)
			if len(c.output) > 0 || c.waited && *mistake == "keep-watching" {
				writable.Set(fd) // the mistake: a socket with room is always writable, select returns at once
			}
			highest = max(highest, fd)
		}
		var timeout *unix.Timeval // nil: sleep until a socket is ready
		if *mistake == "zero-timeout" {
			timeout = &unix.Timeval{} // the mistake: return at once, and ask again, forever
		}
		if _, err := unix.Select(highest+1, &readable, &writable, nil, timeout); err != nil && err != unix.EINTR {
			fmt.Fprintln(os.Stderr, "broken: select:", err)
			os.Exit(1)
		}
		if readable.IsSet(listener) {
			if fd, _, err := unix.Accept(listener); err == nil {
				unix.SetNonblock(fd, true)
				clients[fd] = &client{fd: fd}
				fmt.Println("Server: client connected")
			}
		}
		for fd, sender := range clients {
			if !readable.IsSet(fd) {
				continue
			}
			n, err := unix.Read(fd, buffer)
			if err == unix.EAGAIN {
				continue
			}
			if n <= 0 {
				unix.Close(fd)
				delete(clients, fd)
				fmt.Println("Server: client disconnected")
				continue
			}
			sender.pending = append(sender.pending, buffer[:n]...)
			for {
				end := bytes.IndexByte(sender.pending, '\n')
				if end < 0 {
					break
				}
				message := bytes.TrimSuffix(sender.pending[:end], []byte("\r"))
				line := append(append([]byte(nil), message...), '\r', '\n')
				sender.pending = sender.pending[end+1:]
				fmt.Printf("Server: received from client: %s\n", message)
				for _, c := range clients {
					if c == sender && *mistake != "echo" {
						continue
					}
					if *mistake == "drop-unsent" {
						unix.Write(c.fd, line) // the mistake: what the socket did not take is lost
						continue
					}
					if *mistake == "blocking-writes" {
						// The mistake: one client that does not read stops the loop, and everyone.
						unix.SetNonblock(c.fd, false)
						for rest := line; len(rest) > 0; {
							n, err := unix.Write(c.fd, rest)
							if err != nil {
								break
							}
							rest = rest[n:]
						}
						unix.SetNonblock(c.fd, true)
						continue
					}
					c.output = append(c.output, line...)
				}
				if *mistake == "first-line" {
					sender.pending = nil // the mistake: the rest of this read is thrown away
					break
				}
			}
		}
		for fd, c := range clients {
			if len(c.output) > 0 && writable.IsSet(fd) {
				if n, err := unix.Write(fd, c.output); err == nil {
					c.output = c.output[n:]
				}
				c.waited = c.waited || len(c.output) > 0
			}
		}
	}
}

// listen opens a non-blocking listening socket on addr, with SO_REUSEADDR if reuse is set.
func listen(addr string, reuse bool) (fd, port int, err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return -1, 0, err
	}
	port, err = strconv.Atoi(portText)
	if err != nil {
		return -1, 0, err
	}
	sockaddr := &unix.SockaddrInet4{Port: port}
	if ip := net.ParseIP(host).To4(); ip != nil {
		copy(sockaddr.Addr[:], ip)
	}
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, 0, err
	}
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return -1, 0, err
		}
	}
	if err := unix.Bind(fd, sockaddr); err != nil {
		return -1, 0, err
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		return -1, 0, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return -1, 0, err
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return -1, 0, err
	}
	return fd, bound.(*unix.SockaddrInet4).Port, nil
}
