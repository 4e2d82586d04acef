//go:build linux || darwin

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// The tests build this stage once, start NATS inside the test (the server library), start the
// real stageBinary as several servers on 127.0.0.1:0 that share it, and talk to them over real
// sockets, as the harness does for the other stages (stage 8 is a module of its own, so it
// cannot import the harness).

var stageBinary string // the stage, built by TestMain

var buildFlags []string // race_test.go adds -race

// whileThrottled is the most of a core a server may use while it relays a throttled client's
// 20 lines a second (cpu_linux_test.go): it wakes ten times a second for them, and measured
// 1.3 to 1.9% of a core here, relaying each through NATS, where a loop that spun while the
// client waited would take all of one. race_test.go raises it: built with the race detector,
// a server does each line's work several times slower.
var whileThrottled = 0.05

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stage8-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stageBinary = filepath.Join(dir, "stage8-cluster")
	build := exec.Command("go", append(append([]string{"build"}, buildFlags...), "-o", stageBinary, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build stage 8:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// patience is how long a test waits for something that must happen: generous, since the
// machine may be busy. quiet is how long it waits for something that must not happen.
const (
	patience = 10 * time.Second
	quiet    = 300 * time.Millisecond
)

// testLease is the -lease of the tests that wait for names to run out: short, so that they
// wait little, but long enough for the refreshes of a busy machine (a tenth of it, 200 ms, for
// each operation on the bucket).
const testLease = 2 * time.Second

// startNATS starts a NATS server with JetStream on 127.0.0.1, on port (-1: any free one), and
// stops it at the end of the test.
func startNATS(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	return startNATSOptions(t, &natsserver.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
}

// startNATSOptions starts a NATS server with options, and stops it at the end of the test.
func startNATSOptions(t *testing.T, options *natsserver.Options) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(options)
	if err != nil {
		t.Fatalf("cannot start NATS: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(patience) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// natsPort is the port a NATS server listens on.
func natsPort(ns *natsserver.Server) int { return ns.Addr().(*net.TCPAddr).Port }

// process is a running stage 8 server.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	port   int    // where its clients connect
	tmpDir string // its TMPDIR
	mu     sync.Mutex
	log    []string // what it printed so far
	seen   int      // how much of log waitLog has looked at
	more   chan struct{}
	done   chan struct{} // closed when its output ends
}

var startedLine = regexp.MustCompile(`port (\d+)\.\.\.$`)

// startServer starts the stageBinary on 127.0.0.1:0 with args, waits until it is in the room, and
// kills it at the end of the test.
func startServer(t *testing.T, args ...string) *process {
	t.Helper()
	s := startServerWaiting(t, args...)
	s.waitLog(`^Server: in the room through NATS`)
	return s
}

// startServerWaiting starts the stageBinary as startServer does, but returns as soon as it
// listens for clients, before it joins the room.
func startServerWaiting(t *testing.T, args ...string) *process {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv starts the stageBinary as startServerWaiting does, with env added to its
// environment.
func startServerEnv(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	s := &process{t: t, more: make(chan struct{}, 1), done: make(chan struct{})}
	s.cmd = exec.Command(stageBinary, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	s.tmpDir = t.TempDir()
	s.cmd.Env = append(append(os.Environ(), env...), "TMPDIR="+s.tmpDir) // where a hub puts its NATS files
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		<-s.done
		for _, line := range s.lines() {
			if strings.Contains(line, "DATA RACE") { // a server built with -race: race_test.go
				t.Errorf("the race detector found a data race in a server:\n%s", strings.Join(s.lines(), "\n"))
				break
			}
		}
	})
	go func() {
		defer close(s.done)
		lines := bufio.NewScanner(out)
		for lines.Scan() {
			s.mu.Lock()
			s.log = append(s.log, lines.Text())
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default:
			}
		}
	}()
	started := s.waitLog(startedLine.String())
	s.port, _ = strconv.Atoi(startedLine.FindStringSubmatch(started)[1])
	return s
}

// startServers starts n servers that use the NATS server at url, with args.
func startServers(t *testing.T, n int, url string, args ...string) []*process {
	servers := make([]*process, n)
	for i := range servers {
		servers[i] = startServer(t, append([]string{"-nats", url}, args...)...)
	}
	return servers
}

// waitLog waits for the next line of the server's log, after those seen so far, that matches
// pattern, and returns it.
func (s *process) waitLog(pattern string) string {
	s.t.Helper()
	return s.waitLogWithin(pattern, patience)
}

// waitLogWithin is waitLog with a wait of its own.
func (s *process) waitLogWithin(pattern string, patience time.Duration) string {
	s.t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.After(patience)
	for {
		s.mu.Lock()
		for ; s.seen < len(s.log); s.seen++ {
			if re.MatchString(s.log[s.seen]) {
				s.seen++
				line := s.log[s.seen-1]
				s.mu.Unlock()
				return line
			}
		}
		s.mu.Unlock()
		select {
		case <-s.more:
		case <-s.done:
			s.mu.Lock()
			log := strings.Join(s.log, "\n")
			s.mu.Unlock()
			s.t.Fatalf("the server ended without printing %q; it printed:\n%s", pattern, log)
		case <-deadline:
			s.mu.Lock()
			log := strings.Join(s.log, "\n")
			s.mu.Unlock()
			s.t.Fatalf("the server did not print %q within %v; it printed:\n%s", pattern, patience, log)
		}
	}
}

// knows waits until every server in others has heard that name joined on another server.
func knows(others []*process, name string) {
	for _, s := range others {
		s.waitLog(`^Server: ` + name + ` joined, on another server$`)
	}
}

// user is a client connection.
type user struct {
	t      *testing.T
	name   string
	conn   net.Conn
	reader *bufio.Reader
	said   []string // a transcript: what it typed and what came, as nc shows them
}

func arrive(t *testing.T, s *process, name string) *user {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	u := &user{t: t, name: name, conn: conn, reader: bufio.NewReader(conn)}
	u.expect("Welcome to the chat! What is your name?")
	return u
}

// join connects a user to s and answers the welcome with name; the next line says who is there.
func join(t *testing.T, s *process, name, presence string) *user {
	t.Helper()
	u := arrive(t, s, name)
	u.send(name)
	u.expect(presence)
	return u
}

func (u *user) send(lines ...string) {
	u.t.Helper()
	u.said = append(u.said, lines...)
	if _, err := u.conn.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		u.t.Fatalf("%s cannot send: %v", u.name, err)
	}
}

// line reads the next line, or fails the test after d.
func (u *user) line(d time.Duration) (string, error) {
	u.conn.SetReadDeadline(time.Now().Add(d))
	line, err := u.reader.ReadString('\n')
	if err == nil {
		line = strings.TrimSuffix(line, "\n")
		u.said = append(u.said, line)
	}
	return line, err
}

// expect reads lines and compares them with want, in order, byte for byte.
func (u *user) expect(want ...string) {
	u.t.Helper()
	for _, w := range want {
		got, err := u.line(patience)
		if err != nil {
			u.t.Fatalf("%s waited for %q: %v", u.name, w, err)
		}
		if got != w {
			u.t.Fatalf("%s got %q, want %q", u.name, got, w)
		}
	}
}

// expectAnyOrder reads len(want) lines and checks that they are want in some order: what
// another server announces as it rejoins the room comes in no particular order.
func (u *user) expectAnyOrder(want ...string) {
	u.t.Helper()
	missing := slices.Clone(want)
	for range want {
		got, err := u.line(patience)
		if err != nil {
			u.t.Fatalf("%s waited for %q: %v", u.name, missing, err)
		}
		i := slices.Index(missing, got)
		if i < 0 {
			u.t.Fatalf("%s got %q, want one of %q", u.name, got, missing)
		}
		missing = slices.Delete(missing, i, i+1)
	}
}

// silent checks that nothing more arrives for a while.
func (u *user) silent() {
	u.t.Helper()
	if got, err := u.line(quiet); err == nil {
		u.t.Fatalf("%s got %q, want nothing", u.name, got)
	}
}

// leave closes the connection.
func (u *user) leave() { u.conn.Close() }

// kill9 kills a server without letting it say a word.
func (s *process) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// lines returns what the server has printed so far.
func (s *process) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// interrupt stops the server as Ctrl-C does, and waits until it has ended.
func (s *process) interrupt() {
	s.cmd.Process.Signal(os.Interrupt)
	<-s.done
}
