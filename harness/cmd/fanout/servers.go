//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
)

// target is a server the benchmark can start.
type target struct {
	name     string // in the table
	pkg      string // module folder, or "" for Redis and NATS
	args     []string
	protocol string
	room     bool // stage 8: a room of two servers, joined by NATS; the receivers on the second
	across   bool // the senders on the first server, so that every line crosses NATS
}

// noFloodControl turns the stages' flood control off: a benchmark floods on purpose, and with
// a budget of 64 KiB/s per sender it would measure the budget, not the relay.
var noFloodControl = []string{"-max-rate", "0"}

var knownTargets = map[string]target{
	"select":  {name: "stage5 select", pkg: "stage5-select", args: []string{"-poller", "select", "-quiet"}},
	"epoll":   {name: "stage5 epoll", pkg: "stage5-select", args: []string{"-poller", "epoll", "-quiet"}},
	"stage7":  {name: "stage7 epoll", pkg: "stage7-identity", args: append([]string{"-poller", "epoll", "-quiet"}, noFloodControl...), protocol: stage7Protocol},
	"gorelay": {name: "gorelay", pkg: "harness/cmd/gorelay", args: []string{"-quiet"}},
	"stage8": {name: "stage8 local", pkg: "stage8-cluster", args: append([]string{"-poller", "epoll", "-quiet"}, noFloodControl...),
		protocol: stage7Protocol, room: true},
	"stage8-across": {name: "stage8 across", pkg: "stage8-cluster", args: append([]string{"-poller", "epoll", "-quiet"}, noFloodControl...),
		protocol: stage7Protocol, room: true, across: true},
	"redis": {name: "redis", protocol: redisProtocol},
	"nats":  {name: "nats-server", protocol: natsProtocol},
}

// selectLimited says the target waits with select, which cannot watch descriptors of 1024 or
// more.
func (t target) selectLimited() bool {
	return t.pkg == "stage5-select" && slices.Contains(t.args, "select")
}

// server is a running target.
type server struct {
	target
	process    *harness.Process
	addr       string
	control    net.Conn // Redis: a connection for INFO
	monitor    string   // NATS: its monitoring port's address, for /varz
	hub        *server  // stage 8: the room's first server, which runs NATS
	senderAddr string   // stage 8: where the senders connect, if not at addr
}

func (s *server) pid() int { return s.process.PID() }

func (s *server) stop() {
	if s.hub != nil {
		s.hub.stop()
	}
	if s.control != nil {
		s.control.Close()
	}
	s.process.Kill()
}

// connected is how many clients the server says it holds: the workshop's servers log every
// connection and disconnection, Redis answers INFO.
func (s *server) connected() (int, error) {
	switch s.protocol {
	case natsProtocol:
		return natsConnections(s.monitor)
	case redisProtocol:
		info, err := redisCommand(s.control, "INFO clients")
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\r\n") {
			if rest, ok := strings.CutPrefix(line, "connected_clients:"); ok {
				n, err := strconv.Atoi(rest)
				return n - 1, err // not counting the control connection
			}
		}
		return 0, errors.New("no connected_clients in INFO")
	}
	n := 0
	if s.hub != nil {
		hub, _ := s.hub.connected()
		n += hub
	}
	for _, line := range s.process.Lines() {
		switch {
		case line == "Server: client connected":
			n++
		case strings.HasPrefix(line, "Server: client disconnected"):
			n--
		case s.protocol == stage7Protocol && strings.HasSuffix(line, " left") && !strings.HasPrefix(line, "Server: received from "):
			n-- // stage 7: "Server: alice left", for a client that had joined
		}
	}
	return n, nil
}

// start starts a target: one server, or for stage 8 a room of two.
func (b *bench) start(t target, maxClients int) (*server, error) {
	if !t.room {
		return b.startOne(t, maxClients)
	}
	// The first server runs NATS, which asks for a secret: its log says the URL to join with,
	// secret included.
	first, second := t, t
	first.args = append(slices.Clip(t.args), "-nats-listen", "127.0.0.1:0")
	hub, err := b.startOne(first, maxClients)
	if err != nil {
		return nil, err
	}
	url := ""
	for _, line := range hub.process.Lines() {
		if rest, ok := strings.CutPrefix(line, "Server:   "); ok && strings.HasPrefix(rest, "nats://") {
			url = rest
		}
	}
	if url == "" {
		hub.stop()
		return nil, fmt.Errorf("the first server did not say where NATS is: %q", hub.process.Lines())
	}
	second.args = append(slices.Clip(t.args), "-nats", url)
	s, err := b.startOne(second, maxClients)
	if err != nil {
		hub.stop()
		return nil, err
	}
	s.hub = hub
	if t.across {
		s.senderAddr = hub.addr
	}
	return s, nil
}

// build builds a folder of the module, or one that is a module of its own (stage 8) in that
// folder, into b.modules.
func (b *bench) build(pkg string) (string, error) {
	root, err := harness.Root()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, pkg, "go.mod")); err != nil {
		return harness.BuildBinary(pkg)
	}
	path := filepath.Join(b.modules, pkg)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = filepath.Join(root, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", pkg, err, out)
	}
	return path, nil
}

// startOne starts a server on 127.0.0.1, pinned to CPU 0 from its first instruction: started
// under taskset, a Go server sees one CPU and sets GOMAXPROCS to 1, as it would for a user
// who pins it; pinned after its start, it would keep two Ps time-sharing one core.
func (b *bench) startOne(t target, maxClients int) (*server, error) {
	s := &server{target: t}
	command, args := "", []string{}
	switch t.protocol {
	case natsProtocol:
		port, err1 := tester.FreePort()
		monitor, err2 := tester.FreePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.monitor = net.JoinHostPort("127.0.0.1", strconv.Itoa(monitor))
		command, args = b.natsServer, natsArgs(port, monitor)
	case redisProtocol:
		port, err := tester.FreePort()
		if err != nil {
			return nil, err
		}
		s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		command = b.redisServer
		args = []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--maxclients", strconv.Itoa(maxClients + 100), "--daemonize", "no"}
	default:
		bin, err := b.build(t.pkg)
		if err != nil {
			return nil, err
		}
		command, args = bin, append([]string{"-addr", "127.0.0.1:0"}, t.args...)
	}
	if b.pin {
		command, args = "taskset", append([]string{"-c", "0", command}, args...) // taskset execs it: same pid
	}
	var err error
	if s.process, err = harness.StartProcess(command, nil, args...); err != nil {
		return nil, err
	}
	switch t.protocol {
	case natsProtocol:
		// nats-server greets a client with its INFO line.
		conn, err := answered(s.addr, func(c net.Conn) bool {
			c.SetDeadline(time.Now().Add(time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			return err == nil && strings.HasPrefix(line, "INFO ")
		})
		if err != nil {
			return nil, fmt.Errorf("nats-server did not greet a client: %v; its output: %q", err, s.process.Stderr())
		}
		conn.Close()
		return s, nil
	case redisProtocol:
		if s.control, err = answered(s.addr, func(c net.Conn) bool {
			reply, err := redisCommand(c, "PING")
			return err == nil && reply == "PONG"
		}); err != nil {
			return nil, fmt.Errorf("redis did not answer PING: %v; its output: %q", err, s.process.Lines())
		}
		return s, nil
	}
	listening, err := harness.Listening(s.process, t.pkg)
	if err != nil {
		return nil, err
	}
	s.addr = listening.Addr
	if t.room {
		if _, ok := s.process.Await(harness.Deadline, func(line string) bool { return strings.Contains(line, "in the room") }); !ok {
			return nil, fmt.Errorf("%s did not join the room within %v: %q", t.name, harness.Deadline, s.process.Stderr())
		}
	}
	return s, nil
}

// dial opens n connections to s with d and waits until s holds want clients.
func (b *bench) dial(s *server, d *net.Dialer, n, want int) ([]net.Conn, error) {
	var conns []net.Conn
	for i := range n {
		c, err := d.Dial("tcp", s.addr)
		if err != nil {
			closeConns(conns)
			return nil, fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
	}
	if err := waitHeld(s, want); err != nil {
		closeConns(conns)
		return nil, err
	}
	time.Sleep(300 * time.Millisecond) // let the server settle after the accepts
	return conns, nil
}

func closeConns(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// waitHeld waits until the server holds n connections.
func waitHeld(s *server, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		held, err := s.connected()
		if err != nil || held >= n {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server holds %d of %d connections after 30s", held, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// answered waits until a freshly started server at addr answers a new connection as ok
// wants, and returns that connection.
func answered(addr string, ok func(net.Conn) bool) (net.Conn, error) {
	deadline := time.Now().Add(harness.Deadline)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			if ok(conn) {
				return conn, nil
			}
			conn.Close()
			err = errors.New("no answer")
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisCommand sends an inline command and returns a simple or bulk string reply.
func redisCommand(conn net.Conn, command string) (string, error) {
	if err := conn.SetDeadline(time.Now().Add(harness.Deadline)); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	first, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	first = strings.TrimRight(first, "\r\n")
	switch {
	case strings.HasPrefix(first, "+"):
		return first[1:], nil
	case strings.HasPrefix(first, "$"):
		n, err := strconv.Atoi(first[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad reply %q", first)
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return "", fmt.Errorf("reply %q", first)
}
