//go:build linux || darwin

package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// startServerNATSURL starts the stageBinary as startServer does, with NATS_URL set to url.
func startServerNATSURL(t *testing.T, url string, args ...string) *process {
	t.Helper()
	s := startServerEnv(t, []string{"NATS_URL=" + url}, args...)
	s.waitLog(`^Server: in the room through NATS`)
	return s
}

// TestNATSURLFromEnv: without -nats, a chat server joins the NATS in NATS_URL, so that the
// secret stays off its command line (ps); with -nats, the flag wins.
func TestNATSURLFromEnv(t *testing.T) {
	t.Parallel()
	secret := rand.Text()
	ns := startNATSWithSecret(t, -1, secret) // joiner_test.go
	url := fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, natsPort(ns))
	fromEnv := startServerNATSURL(t, url)
	if fromEnv.lines()[2] != fmt.Sprintf("Server: in the room through NATS at 127.0.0.1:%d", natsPort(ns)) {
		t.Fatalf("with NATS_URL, a server printed:\n%s", strings.Join(fromEnv.lines(), "\n"))
	}
	alice := join(t, fromEnv, "alice", "* The room is empty")
	other := startNATS(t, -1)
	fromFlag := startServerNATSURL(t, url, "-nats", other.ClientURL())
	join(t, fromFlag, "alice", "* The room is empty") // another room: the flag's
	alice.silent()
}

// TestURLFile: the hub writes the URLs that join it to -nats-url-file, readable by its owner
// only, as NATS_URL takes them; a server given them through NATS_URL joins; a hub restarted
// with the same file keeps the secret, so that the server that joined comes back by itself.
func TestURLFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nats-url")
	os.WriteFile(path, nil, 0o644) // there already, readable by all: it must not stay so
	hub := startServer(t, "-nats-listen", "127.0.0.1:0", "-nats-url-file", path)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("-nats-url-file has mode %v, want -rw-------", info.Mode().Perm())
	}
	secret, port := hubSecret(t, hub) // readme_test.go
	data, _ := os.ReadFile(path)
	if want := fmt.Sprintf("nats://%s@127.0.0.1:%d\n", secret, port); string(data) != want {
		t.Fatalf("-nats-url-file holds %q, want %q", data, want)
	}
	if want := "Server: (written to " + path + ", for NATS_URL=$(cat " + path + "))"; !slices.Contains(hub.lines(), want) {
		t.Fatalf("the hub did not say %q; it printed:\n%s", want, strings.Join(hub.lines(), "\n"))
	}
	other := startServerNATSURL(t, strings.TrimSpace(string(data)))
	bob := join(t, other, "bob", "* The room is empty")

	hub.interrupt()
	other.waitLog(`^Server: lost NATS`)
	again := startServer(t, "-nats-listen", fmt.Sprintf("127.0.0.1:%d", port), "-nats-url-file", path)
	if s, _ := hubSecret(t, again); s != secret {
		t.Fatalf("the hub restarted with -nats-url-file took the secret %s, want %s", s, secret)
	}
	other.waitLog(`^Server: back in the room`)
	bob.expect("* The room is split: only the users on this server hear you, until it rejoins",
		"* The room is whole again (what was said on the other side meanwhile is lost)",
		"* NATS lost the room's names: this server claimed yours again") // the hub's NATS is new
	other.waitLog(`^Server: NATS lost the room's names`)
	join(t, again, "amy", "* The room contains: bob")
	bob.expect("* amy has entered the room")
}

// TestJoinURLs: a hub that listens on every interface prints a URL for this machine
// (127.0.0.1) and one for each of its own addresses, each one pasted as it is, never "HOST".
func TestJoinURLs(t *testing.T) {
	t.Parallel()
	probe := startNATS(t, -1)
	port := natsPort(probe)
	probe.Shutdown()
	hub := startServer(t, "-nats-listen", fmt.Sprintf(":%d", port))
	secret, _ := hubSecret(t, hub)
	var printed []string
	for _, line := range hub.lines() {
		if url, ok := strings.CutPrefix(line, "Server:   "); ok {
			printed = append(printed, url)
		}
	}
	want := []string{fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, port)}
	for _, address := range machineAddresses() {
		want = append(want, fmt.Sprintf("nats://%s@%s:%d", secret, address, port))
	}
	if !slices.Equal(printed, want) {
		t.Fatalf("the hub printed the URLs %q, want %q", printed, want)
	}
	for _, url := range printed {
		other := startServer(t, "-nats", url)
		other.interrupt()
	}
}

// TestHubListensOnOneAddress: a hub given one address for its NATS joins it there, and prints
// that address alone. (127.0.0.2 is this machine too, on Linux.)
func TestHubListensOnOneAddress(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("127.0.0.2 is a loopback address on Linux only")
	}
	hub := startServer(t, "-nats-listen", "127.0.0.2:0")
	if !regexp.MustCompile(`^Server:   nats://\w+@127\.0\.0\.2:\d+$`).MatchString(hub.lines()[3]) {
		t.Fatalf("the hub printed:\n%s", strings.Join(hub.lines(), "\n"))
	}
	join(t, hub, "alice", "* The room is empty")
}

// TestHubPortBusy: a -nats-listen port that something else holds is said in one line with
// stage 2's hint, its flag named, and exit status 1, as a busy -addr is.
func TestHubPortBusy(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), patience) // it must not run on
	defer cancel()
	out, err := exec.CommandContext(ctx, stageBinary, "-addr", "127.0.0.1:0",
		"-nats-listen", fmt.Sprintf("127.0.0.1:%d", port)).CombinedOutput()
	exit, _ := err.(*exec.ExitError)
	want := fmt.Sprintf("stage9-durable: cannot start NATS on 127.0.0.1:%d: address already in use\n"+
		"(is another server still running? try -nats-listen 127.0.0.1:%d)\n", port, port+1)
	if exit == nil || exit.ExitCode() != 1 || string(out) != want {
		t.Fatalf("exit: %v, printing:\n%s\nwant status 1 and %q", err, out, want)
	}
}

// TestMaxLineOverNATS: a -max-line that, framed with a long name, would not fit in one NATS
// message is refused in one line, once the server knows its NATS's limit, with exit status 2.
// (Unchecked, a line too long to cut between lines made the server publish empty messages for
// ever.)
func TestMaxLineOverNATS(t *testing.T) {
	t.Parallel()
	ns := startNATS(t, -1)
	ctx, cancel := context.WithTimeout(context.Background(), patience) // it must not run on
	defer cancel()
	out, err := exec.CommandContext(ctx, stageBinary, "-addr", "127.0.0.1:0", "-nats", ns.ClientURL(),
		"-max-line", "1048300").CombinedOutput()
	exit, _ := err.(*exec.ExitError)
	want := "stage9-durable: -max-line 1048300 does not fit in a NATS message (1048576 bytes)\n"
	if exit == nil || exit.ExitCode() != 2 || !strings.HasSuffix(string(out), want) {
		t.Fatalf("exit: %v, printing:\n%s\nwant status 2 and %q", err, out, want)
	}
}

// TestHubLeavesNoFiles: a hub killed without a word (kill -9) leaves nothing in the temporary
// directory: its NATS keeps the names in memory, and its directory is gone once it started.
func TestHubLeavesNoFiles(t *testing.T) {
	t.Parallel()
	hub := startServer(t, "-nats-listen", "127.0.0.1:0")
	join(t, hub, "alice", "* The room is empty") // the names' bucket exists now
	hub.kill9()
	entries, _ := os.ReadDir(hub.tmpDir)
	if len(entries) > 0 {
		t.Fatalf("a hub killed with kill -9 left %v in its temporary directory", entries)
	}
}
