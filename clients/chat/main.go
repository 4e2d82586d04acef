// Command chat is the interactive client the article promised: it sends what you type and
// shows what the others say at the same time, in one terminal.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5555", "address of the chat server (host:port)")
	name := flag.String("name", "", "send `NAME` as the first line, for a server that asks who you are\n(stage 7)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), "Usage: chat [flags]\n"+
			"Sends what you type to the chat server and shows what the others say,\n"+
			"in one terminal.\n"+
			"Keys: Enter sends the line, Backspace erases a character, Ctrl-U the whole line;\n"+
			"Ctrl-C, or Ctrl-D on an empty line, leaves.\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		// The same as a wrong flag: one line on stderr and exit 2.
		fmt.Fprintf(os.Stderr, "chat: unexpected argument %q (chat -h shows the flags)\n", flag.Arg(0))
		os.Exit(2)
	}

	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fail("cannot connect to %s: %v", *addr, reason(err))
	}
	fmt.Printf("Client: connected to server on address %s\n", *addr)
	// A server that asks who you are (stage 7) takes the first line as your name, so it goes
	// before anything you type. Without -name, the first line you type is the first line sent.
	if *name != "" {
		if _, err := io.WriteString(conn, *name+"\r\n"); err != nil {
			fail("lost the connection to %s: %v", *addr, reason(err))
		}
	}

	// Listen for signals before the terminal goes into raw mode, so that from then on no
	// signal we handle can end the program without putting the terminal back.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	resized := make(chan os.Signal, 1)
	notifyResize(resized)

	screen := &console{out: os.Stdout}
	screen.setWidth(terminalWidth(os.Stdout))
	restore, isTerminal := rawMode(os.Stdin)
	if isTerminal {
		screen.terminal = true
		screen.prompt()
	}
	serverClosed, err := chat(conn.(*net.TCPConn), screen, signals, resized)
	screen.end()
	if isTerminal {
		restore()
	}
	switch {
	case err != nil:
		fail("lost the connection to %s: %v", *addr, reason(err))
	case serverClosed:
		// An end of stream is how TCP says the server closed the connection in good order
		// (it stopped, or it dropped us after telling us why): not a failure of this program.
		fmt.Println("Client: the server closed the connection")
	default:
		fmt.Println("Client: disconnected")
	}
}

// chat relays typed lines to the server and the server's messages to the screen until you
// leave, or the server closes the connection (serverClosed), or the connection fails (err).
//
// The article's clients each wait for one thing: the sender for your next line, the receiver
// for the server's next message. A chat must wait for both at once, so each wait gets its
// own goroutine, and this one goroutine reacts to whichever ends first. Only this goroutine
// writes to the screen and to the server, so nothing is ever printed in the middle of
// something else.
func chat(conn *net.TCPConn, screen *console, signals, resized <-chan os.Signal) (serverClosed bool, err error) {
	messages := make(chan string)
	var lost error // why messages was closed: written before the close, read after it
	go func() {
		lost = readMessages(conn, messages)
		close(messages)
	}()

	typed := make(chan []byte)
	go readInput(os.Stdin, typed)

	// Each line ends in "\r\n", as the sender's do; every stage from 2 on takes "\n" too.
	send := func(lines []string) error {
		for _, line := range lines {
			if _, err := io.WriteString(conn, line+"\r\n"); err != nil {
				return err
			}
		}
		return nil
	}
	// A send fails when the connection is gone, and the reader is about to learn how it ended:
	// an end of stream (the server closed it in good order, perhaps after a last message) or
	// an error. Show what still arrives, and report what the reader found.
	sendFailed := func(sendErr error) (bool, error) {
		timeout := time.After(time.Second)
		for {
			select {
			case message, open := <-messages:
				if !open {
					return lost == nil, lost
				}
				screen.show(message)
			case <-timeout:
				return false, sendErr
			}
		}
	}

	for {
		select {
		case message, open := <-messages:
			if !open {
				return lost == nil, lost
			}
			screen.show(message)

		case input, open := <-typed:
			if !open { // end of input: send what is left, then leave
				if err := send(screen.rest()); err != nil {
					return sendFailed(err)
				}
				leave(conn, messages)
				return false, nil
			}
			lines, quit := screen.feed(input)
			if err := send(lines); err != nil {
				return sendFailed(err)
			}
			if quit {
				leave(conn, messages)
				return false, nil
			}

		case <-resized:
			screen.resize(terminalWidth(os.Stdout))

		case <-signals:
			leave(conn, messages)
			return false, nil
		}
	}
}

// readMessages passes on every line the server sends, without its terminator, and returns
// why it stopped: nil when the server closed the connection in good order.
func readMessages(conn net.Conn, messages chan<- string) error {
	reader := bufio.NewReader(conn)
	for {
		line, err := reader.ReadString('\n')
		if line != "" {
			messages <- trimLineEnd(line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readInput passes on whatever arrives on stdin (each key in a terminal, chunks from a pipe)
// and closes typed at the end of input.
func readInput(stdin io.Reader, typed chan<- []byte) {
	buffer := make([]byte, 1024)
	for {
		n, err := stdin.Read(buffer)
		if n > 0 {
			typed <- append([]byte(nil), buffer[:n]...)
		}
		if err != nil {
			close(typed)
			return
		}
	}
}

// leave closes the connection in good order. Closing a socket that still holds unread data
// makes the kernel reset the connection, and a reset can throw away lines still on their
// way to the server. So say we are done sending, keep reading (and dropping) messages until
// the server closes its side too, or a second has passed, and only then close.
func leave(conn *net.TCPConn, messages <-chan string) {
	conn.CloseWrite()
	timeout := time.After(time.Second)
	for open := true; open; {
		select {
		case _, open = <-messages: // you have left: messages are no longer shown
		case <-timeout:
			open = false
		}
	}
	conn.Close()
}

// trimLineEnd removes the "\n" or "\r\n" that ends a line.
func trimLineEnd(line string) string {
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
}

// reason drops the "dial tcp 127.0.0.1:5555: connect:" that Go puts in front of the cause.
func reason(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		err = opErr.Err
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		err = sysErr.Err
	}
	return err
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chat: "+format+"\n", args...)
	os.Exit(1)
}
