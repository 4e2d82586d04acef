//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The protocols the generator speaks. Each frames the same fixed-size line its own way; the
// generator checks every frame whole, so a protocol's bytes around the line are checked too.
const (
	lineProtocol   = ""       // the workshop's: the line itself, relayed with "\r\n"
	redisProtocol  = "redis"  // RESP: SUBSCRIBE c, PUBLISH c line; receivers get a "message" array
	natsProtocol   = "nats"   // NATS text protocol: SUB c 1, PUB c n; receivers get MSG c 1 n
	stage7Protocol = "stage7" // stage 7: join with a name first; receivers get "[name] line\n"
)

// stage 7 names must be unique in the room: each run takes names of its own, in case a
// previous run's clients are still on their way out.
var stage7Run atomic.Int64

// greet does what a connection must do before it can send or receive messages.
func (g *generator) greet(p *peer) error {
	switch g.w.protocol {
	case redisProtocol:
		if p.receiver {
			subscribe := fmt.Sprintf("*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", len(channel), channel)
			p.preamble = []byte(fmt.Sprintf("*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n", len(channel), channel))
			if _, err := unix.Write(p.fd, []byte(subscribe)); err != nil {
				return fmt.Errorf("subscribing: %w", err)
			}
		}
	case natsProtocol:
		// verbose false: no +OK for every command. The server answers PING in order, so its
		// PONG proves that the subscription is in place: what comes after it is messages.
		hello := `CONNECT {"verbose":false,"pedantic":false}` + "\r\n"
		if p.receiver {
			hello += fmt.Sprintf("SUB %s 1\r\nPING\r\n", channel)
			p.until = []byte("PONG\r\n")
		}
		if _, err := unix.Write(p.fd, []byte(hello)); err != nil {
			return fmt.Errorf("connecting to NATS: %w", err)
		}
	case stage7Protocol:
		if g.w.run == 0 {
			g.w.run = stage7Run.Add(1)
		}
		name := fmt.Sprintf("r%dx%d", g.w.run, p.index)
		if !p.receiver {
			name = g.senderName(p.index)
		}
		rest, err := joinStage7(p.fd, name)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if p.receiver {
			p.lineMode, p.partial = true, rest
		}
	}
	return nil
}

// senderName is stage 7 sender i's name; all of one run's have the same length, and differ
// in their last character only (the header's wildcard).
func (g *generator) senderName(i int) string {
	return fmt.Sprintf("s%dx%x", g.w.run, i)
}

// stage7Header is what stage 7 puts before every line from this run's senders.
func (g *generator) stage7Header() ([]byte, int) {
	if g.w.run == 0 {
		g.w.run = stage7Run.Add(1)
	}
	h := "[" + g.senderName(0) + "] "
	return []byte(h), len(h) - 3 // the last character of the name
}

// joinStage7 reads the welcome line, sends the name and reads the presence line, on a socket
// made blocking (with a timeout) for the time it takes. It returns what came after the
// presence line: the entered lines of clients that joined since.
func joinStage7(fd int, name string) ([]byte, error) {
	timeout := unix.NsecToTimeval(int64(syncTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &timeout); err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		return nil, err
	}
	var got []byte
	readLine := func() ([]byte, error) {
		buf := make([]byte, 4096)
		for {
			if i := bytes.IndexByte(got, '\n'); i >= 0 {
				line := got[:i+1]
				got = got[i+1:]
				return line, nil
			}
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n == 0 {
				return nil, fmt.Errorf("the server closed or did not answer (%v) after %q", err, got)
			}
			got = append(got, buf[:n]...)
		}
	}
	welcome, err := readLine()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(welcome, []byte("Welcome")) {
		return nil, fmt.Errorf("expected the welcome line, got %q", welcome)
	}
	if _, err := unix.Write(fd, []byte(name+"\n")); err != nil {
		return nil, err
	}
	presence, err := readLine()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(presence, []byte("* The room")) {
		return nil, fmt.Errorf("expected the presence line, got %q", presence)
	}
	none := unix.Timeval{}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &none); err != nil {
		return nil, err
	}
	return got, unix.SetNonblock(fd, true)
}

// skipPreamble consumes what a receiver gets before its first message: NATS's INFO line up to
// the PONG, stage 7's presence lines up to the first sync line. It returns the bytes after
// that, or nil while the preamble is not over.
func (g *generator) skipPreamble(p *peer, data []byte, now time.Duration) ([]byte, error) {
	p.partial = append(p.partial, data...)
	if p.until != nil {
		i := bytes.Index(p.partial, p.until)
		if i < 0 {
			if len(p.partial) > 64<<10 {
				return nil, fmt.Errorf("receiver %d: no %q from the server in %q", p.index, p.until, p.partial)
			}
			return nil, nil
		}
		rest := append([]byte{}, p.partial[i+len(p.until):]...)
		p.partial, p.until, p.synced = nil, nil, true
		return rest, nil
	}
	for !p.synced {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			if len(p.partial) > 64<<10 {
				return nil, fmt.Errorf("receiver %d: no line end in %q", p.index, p.partial[:200])
			}
			return nil, nil
		}
		line := p.partial[:i+1]
		if !bytes.HasPrefix(line, []byte("* ")) { // "* r7 has entered the room" and the like
			if len(line) != g.frame {
				return nil, fmt.Errorf("receiver %d: unexpected line %q", p.index, line)
			}
			if err := g.deliver(p, line, now); err != nil { // only a sync line is expected
				return nil, err
			}
		}
		p.partial = p.partial[i+1:]
	}
	rest := append([]byte{}, p.partial...)
	p.partial, p.lineMode = nil, false
	return rest, nil
}

// headerMatches checks the bytes of a frame before its payload.
func (g *generator) headerMatches(frame []byte) bool {
	h, w := g.header, g.wildcard
	if w < 0 {
		return string(frame[:len(h)]) == string(h)
	}
	return string(frame[:w]) == string(h[:w]) && string(frame[w+1:len(h)]) == string(h[w+1:])
}

// findNATS finds the nats-server executable: on PATH, or where `go install` puts it.
func findNATS(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil || strings.ContainsRune(name, '/') {
		return path, err
	}
	var dirs []string
	if bin := os.Getenv("GOBIN"); bin != "" {
		dirs = append(dirs, bin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = append(dirs, filepath.Join(strings.Split(gopath, ":")[0], "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, dir := range dirs {
		if candidate, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return candidate, nil
		}
	}
	return "", err
}

// natsArgs starts nats-server on 127.0.0.1 with its monitoring port, which says how many
// clients it holds. Its default limit of 65,536 clients is enough for every workload here.
func natsArgs(port, monitor int) []string {
	return []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(monitor)}
}

// natsConnections asks nats-server's monitoring port how many clients it holds.
func natsConnections(monitor string) (int, error) {
	client := http.Client{Timeout: syncTimeout}
	resp, err := client.Get("http://" + monitor + "/varz")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var varz struct {
		Connections int `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&varz); err != nil {
		return 0, fmt.Errorf("nats-server /varz: %w", err)
	}
	return varz.Connections, nil
}
