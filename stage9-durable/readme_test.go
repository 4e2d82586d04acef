//go:build linux || darwin

package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's blocks from a real run")

// This folder's README shows what three servers and three users print. The harness in the root
// module checks the other READMEs' blocks, but cannot start stage 9, which is a module of its
// own: this test runs the scenario and compares.
var stage9Block = regexp.MustCompile("(?s)<!-- output: ([a-z0-9/-]+) -->\n```text\n(.*?)```\n")

func TestREADME(t *testing.T) {
	const path = "README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	for _, m := range stage9Block.FindAllStringSubmatch(string(data), -1) {
		blocks[m[1]] = m[2]
	}
	got := readmeScenario(t)
	if *update {
		updated := stage9Block.ReplaceAllStringFunc(string(data), func(block string) string {
			name := stage9Block.FindStringSubmatch(block)[1]
			if out, ok := got[name]; ok {
				return fmt.Sprintf("<!-- output: %s -->\n```text\n%s```\n", name, out)
			}
			return block
		})
		if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch want, ok := blocks[name]; {
		case !ok:
			t.Errorf("README.md has no block <!-- output: %s -->", name)
		case want != got[name] && !*update:
			t.Errorf("README.md block %s does not match a real run (run `go test -run TestREADME -update` "+
				"in this folder if the change is intended);\nREADME:\n%s\nreal run:\n%s", name, want, got[name])
		}
	}
	for name := range blocks {
		if _, ok := got[name]; !ok {
			t.Errorf("README.md block %s has no scenario that produces it", name)
		}
	}
}

// readmeScenario plays the README's session: three servers, the first one running NATS for the
// room; alice, bob and carol on one each; the third server stopped, then the first (which
// splits the room), then the first started again.
func readmeScenario(t *testing.T) map[string]string {
	urlFile := filepath.Join(t.TempDir(), "nats-url")
	hub := startServer(t, "-nats-listen", ":0", "-nats-url-file", urlFile)
	secret, natsPort := hubSecret(t, hub)
	// NATS_URL=$(cat nats-url): the secret stays out of the command line, where ps shows it.
	env := []string{"NATS_URL=" + fmt.Sprintf("nats://%s@127.0.0.1:%d", secret, natsPort)}
	second := startServerEnv(t, env)
	second.waitLog(`^Server: in the room through NATS`)
	third := startServerEnv(t, env)
	third.waitLog(`^Server: in the room through NATS`)

	alice := join(t, hub, "alice", "* The room is empty")
	knows([]*process{second, third}, "alice")
	bob := join(t, second, "bob", "* The room contains: alice")
	alice.expect("* bob has entered the room")
	knows([]*process{hub, third}, "bob")
	carol := join(t, third, "carol", "* The room contains: alice, bob")
	alice.expect("* carol has entered the room")
	bob.expect("* carol has entered the room")

	bob.send("Hi! I am on the second server")
	alice.expect("[bob] Hi! I am on the second server")
	carol.expect("[bob] Hi! I am on the second server")
	carol.send("/msg alice and I am on the third")
	alice.expect("[carol -> you] and I am on the third")
	alice.send("/who")
	alice.expect("* Present: alice, bob, carol")

	// Ctrl-Z in terminal 3: carol's server stops, as a laptop whose lid closes. A lease
	// later, the others see her leave, and someone else takes her name.
	third.cmd.Process.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { third.cmd.Process.Signal(syscall.SIGCONT) })
	alice.expect("* carol has left the room")
	bob.expect("* carol has left the room")
	hub.waitLog(`^Server: carol left`)
	second.waitLog(`^Server: carol left`)
	newCarol := join(t, second, "carol", "* The room contains: alice, bob")
	alice.expect("* carol has entered the room")
	bob.expect("* carol has entered the room")
	hub.waitLog(`^Server: carol joined, on another server$`)
	carol.send("Am I still carol?")           // it waits in the stopped server's socket
	third.cmd.Process.Signal(syscall.SIGCONT) // fg: not a word of it reaches the others
	carol.expect("Server: someone on another server has your name now, disconnecting you")
	paused := third.waitLog(`^Server: carol left \(its name was taken on another server\)$`)
	alice.silent()
	bob.silent()

	alice.leave() // her netcat, stopped with Ctrl-C
	bob.expect("* alice has left the room")
	hub.waitLog(`^Server: alice left$`)
	second.waitLog(`^Server: alice left`)
	hub.interrupt() // and NATS goes with it
	bob.expect("* The room is split: only the users on this server hear you, until it rejoins")
	second.waitLog(`^Server: lost NATS`)
	second.waitLog(`^Server: NATS does not answer`) // while terminal 1 is being restarted

	// The same secret, read again in the URL file: the others still have the URL that holds it.
	again := startServer(t, "-addr", fmt.Sprintf("127.0.0.1:%d", hub.port),
		"-nats-listen", fmt.Sprintf(":%d", natsPort), "-nats-url-file", urlFile)
	bob.expect("* The room is whole again (what was said on the other side meanwhile is lost)",
		"* NATS lost the room's names: this server claimed yours again")
	newCarol.expect("* alice has left the room",
		"* The room is split: only the users on this server hear you, until it rejoins",
		"* The room is whole again (what was said on the other side meanwhile is lost)",
		"* NATS lost the room's names: this server claimed yours again")
	again.waitLog(`^Server: bob joined, on another server$`)
	back := join(t, again, "alice", "* The room contains: bob, carol")
	bob.expect("* alice has entered the room")
	back.send("Back again")
	bob.expect("[alice] Back again")
	second.waitLog(`^Server: alice joined, on another server$`) // its log may lag behind bob's screen

	ports := map[int]int{hub.port: 5555, second.port: 5556, third.port: 5557, natsPort: 4222}
	transcript := func(command string, lines []string) string {
		text := "$ " + command + "\n" + strings.Join(machineIndependent(lines), "\n") + "\n"
		text = strings.ReplaceAll(text, secret, readmeSecret) // a new one at each start
		text = strings.ReplaceAll(text, urlFile, "nats-url")
		for from, to := range ports {
			text = strings.ReplaceAll(text, strconv.Itoa(from), strconv.Itoa(to))
		}
		return text
	}
	return map[string]string{
		"stage9/server1": transcript("go run . -nats-url-file nats-url", hub.lines()),
		"stage9/server2": transcript("NATS_URL=$(cat nats-url) go run . -addr :5556", second.lines()),
		"stage9/server3": transcript("NATS_URL=$(cat nats-url) go run . -addr :5557",
			third.lines()[:slices.Index(third.lines(), paused)+1]), // what follows is the restart's
		"stage9/alice": transcript("nc 127.0.0.1 5555", alice.said),
		"stage9/bob":   transcript("nc 127.0.0.1 5556", bob.said),
		"stage9/carol": transcript("nc 127.0.0.1 5557", carol.said),
	}
}

// readmeSecret stands for the secret in the README: each start makes a new one.
const readmeSecret = "7QJXKD2MWV5TNHB4ZRPA6LCEYU"

// hubSecret reads, in what a server that runs NATS printed, the secret and the port the others
// join with.
func hubSecret(t *testing.T, hub *process) (secret string, port int) {
	t.Helper()
	joinWith := regexp.MustCompile(`(?m)^Server:   nats://([A-Z2-7]{26})@127\.0\.0\.1:(\d+)$`)
	m := joinWith.FindStringSubmatch(strings.Join(hub.lines(), "\n"))
	if m == nil {
		t.Fatalf("the hub did not print the URL to join it with; it printed:\n%s", strings.Join(hub.lines(), "\n"))
	}
	port, _ = strconv.Atoi(m[2])
	return m[1], port
}

// readmeAddress stands for this machine's own addresses in the README's blocks.
const readmeAddress = "192.168.1.20"

// machineIndependent replaces the lines of a hub's URLs for this machine's own addresses (none,
// one or more, whatever the machine) with one line for readmeAddress, after the 127.0.0.1 one.
func machineIndependent(lines []string) []string {
	var out []string
	for _, line := range lines {
		isMachine := false
		for _, address := range machineAddresses() {
			isMachine = isMachine || strings.HasPrefix(line, "Server:   nats://") && strings.Contains(line, "@"+address+":")
		}
		if isMachine {
			continue
		}
		out = append(out, line)
		if m := regexp.MustCompile(`^Server:   nats://(\w+)@127\.0\.0\.1:(\d+)$`).FindStringSubmatch(line); m != nil {
			out = append(out, "Server:   nats://"+m[1]+"@"+readmeAddress+":"+m[2])
		}
	}
	return out
}
