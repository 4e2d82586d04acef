package harness

import (
	"github.com/go-chat-workshop/simple-chat-server/harness/tester"

	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The scenarios the README walks through, each run for real. A scenario returns the
// transcript of every terminal it shows, by block name; TestREADME compares them with README.md.
// Clients that read the keyboard run in a pseudo-terminal, so their transcripts hold what a
// person sees: the prompts, and the lines typed after them as the terminal echoes them.

type readmeScenario struct {
	name string
	run  func(t *testing.T) map[string]string
	// alone marks a scenario that measures cores kept busy, and so must run with nothing
	// beside it (TestREADMEAlone); blocks names the blocks it produces.
	alone  bool
	blocks []string
}

var readmeScenarios = []readmeScenario{
	{name: "stage1", run: readmeStage1},
	{name: "stage2", run: readmeStage2},
	{name: "stage2-reuseaddr", run: readmeStage2ReuseAddr},
	{name: "stage3", run: readmeStage3},
	{name: "stage4", run: readmeBroadcast("stage4", "stage4-broadcast", "Hello", "How are you?", "What are you doing?")},
	{name: "stage5", run: readmeBroadcast("stage5", "stage5-select", "Hello", "How are you?", "select sleeps until there is work")},
	{name: "stage5-busy-port", run: readmeBusyPort},
	{name: "stage6", run: readmeStage6},
	{name: "stage7", run: readmeStage7},
	{name: "chat", run: readmeChat},
	{name: "cputable", run: readmeCPUTable, alone: true, blocks: []string{"cputable"}},
	{name: "check", run: readmeCheck},
	{name: "check-buffered", run: readmeCheckBuffered},
}

// serverTranscript is what the server's terminal shows: the command, then its output.
func serverTranscript(command string, s *Server) string {
	out := "$ " + command + "\n" + strings.Join(s.Lines(), "\n") + "\n" + s.Stderr()
	return normalise(out, s.Port, true)
}

// stoppedTranscript is serverTranscript of a server stopped with Ctrl-C in its terminal (the
// test sends the SIGINT itself): the terminal echoes the key as ^C where the cursor is, at the
// start of the line the server prints on its way out, and a README shows the screen.
func stoppedTranscript(command string, s *Server) string {
	return strings.Replace(serverTranscript(command, s), "\nServer: shutting down\n", "\n^CServer: shutting down\n", 1)
}

// typeLine types one line into a client at its next prompt, as a person would: only once the
// prompt is there, so that the echo of the typing lands after it.
func typeLine(t *testing.T, client *tty, prompts int, line string) {
	t.Helper()
	client.waitCount(t, "> ", prompts)
	client.Type(t, line+"\n")
}

func readmeStage1(t *testing.T) map[string]string {
	server := StartServer(t, "stage1-blocking")
	sender := startTTY(t, "clients/sender", "-addr", server.Addr, "-no-newline")
	server.WaitLine(t, "Server: client connected")
	typeLine(t, sender, 1, "Hello, world")
	server.WaitLine(t, "Server: received from client: Hello, wor")
	typeLine(t, sender, 2, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.")
	server.WaitLine(t, "Server: received from client: r adipisci")
	sender.waitCount(t, "> ", 3)
	sender.Type(t, ctrlD)
	require.Equal(t, 0, sender.WaitExit(t, Deadline))
	server.WaitLine(t, "Server: client disconnected")
	require.Equal(t, 0, server.WaitExit(t, Deadline))
	return map[string]string{
		"stage1/sender": sender.transcript("go run ./clients/sender -no-newline", server.Port),
		"stage1/server": serverTranscript("go run ./stage1-blocking", server),
	}
}

func readmeStage2(t *testing.T) map[string]string {
	server := StartServer(t, "stage2-recvline")
	first := startTTY(t, "clients/sender", "-addr", server.Addr)
	server.WaitLine(t, "Server: client connected")
	typeLine(t, first, 1, "Hello, world")
	server.WaitLine(t, "Server: received from client: Hello, world")
	typeLine(t, first, 2, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.")
	server.WaitLine(t, "Server: received from client: Lorem ipsum dolor sit amet, consectetur adipiscing elit.")

	second := startTTY(t, "clients/sender", "-addr", server.Addr)
	typeLine(t, second, 1, "Hola, mundo")
	typeLine(t, second, 2, "What's 1 + 1? Answer is 10 in binary.")
	second.waitCount(t, "> ", 3)
	server.ExpectNoLine(t, 300*time.Millisecond)

	first.waitCount(t, "> ", 3)
	first.Type(t, ctrlD)
	require.Equal(t, 0, first.WaitExit(t, Deadline))
	server.WaitLine(t, "Server: client disconnected")
	require.Equal(t, 0, server.WaitExit(t, Deadline))
	// The second sender's connection, never accepted, is reset when the server exits, and
	// the sender (which reads its socket) says so at once.
	require.Equal(t, 1, second.WaitExit(t, Deadline))
	return map[string]string{
		"stage2/sender":        first.transcript("go run ./clients/sender", server.Port),
		"stage2/second-sender": second.transcript("go run ./clients/sender", server.Port),
		"stage2/server":        serverTranscript("go run ./stage2-recvline", server),
	}
}

// readmeStage2ReuseAddr stops a server while its client is connected, which leaves the
// server's side of that connection in TIME_WAIT, and starts it again at once with
// SO_REUSEADDR cleared. It runs `go run` itself, as the README does, so that the transcript
// holds what go run adds.
func readmeStage2ReuseAddr(t *testing.T) map[string]string {
	server := StartServer(t, "stage2-recvline")
	client := Dial(t, server.Addr)
	server.WaitLine(t, "Server: client connected")
	server.Kill()
	client.ExpectClosed("")
	client.Close()

	transcript := goRunFails(t, server, "./stage2-recvline", "-reuseaddr=false")
	return map[string]string{"stage2/reuseaddr": transcript}
}

// goRunFails runs `go run PKG ARGS -addr <server's address>` in the module's root, as the
// README does (so that the transcript holds the "exit status" line go run adds), expects it to
// fail, and returns the transcript of the README's command, without the -addr.
func goRunFails(t *testing.T, server *Server, pkg string, args ...string) string {
	t.Helper()
	root := RootDir(t)
	cmd := exec.Command("go", append(append([]string{"run", pkg}, args...), "-addr", server.Addr)...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "%s should have failed; it printed %q", cmd, out)
	command := strings.Join(append([]string{"go run", pkg}, args...), " ")
	return normalise("$ "+command+"\n"+string(out), server.Port, true)
}

func readmeStage3(t *testing.T) map[string]string {
	server := StartServer(t, "stage3-nonblocking")
	first := startTTY(t, "clients/sender", "-addr", server.Addr)
	server.WaitLine(t, "Server: client connected")
	second := startTTY(t, "clients/sender", "-addr", server.Addr)
	server.WaitLine(t, "Server: client connected")
	for i, turn := range []struct {
		client *tty
		line   string
	}{{first, "Hello"}, {second, "Hola"}, {first, "Foo"}, {second, "Bar"}} {
		typeLine(t, turn.client, i/2+1, turn.line)
		server.WaitLine(t, "Server: received from client: "+turn.line)
	}
	first.waitCount(t, "> ", 3)
	first.Type(t, ctrlD)
	require.Equal(t, 0, first.WaitExit(t, Deadline))
	server.WaitLine(t, "Server: client disconnected")
	second.waitCount(t, "> ", 3)
	server.ExpectNoLine(t, 200*time.Millisecond)
	return map[string]string{
		"stage3/sender-1": first.transcript("go run ./clients/sender", server.Port),
		"stage3/sender-2": second.transcript("go run ./clients/sender", server.Port),
		"stage3/server":   serverTranscript("go run ./stage3-nonblocking", server),
	}
}

// readmeBroadcast is the same scenario for stages 4 and 5: a receiver, a sender, three lines.
// Stage 5 is then stopped with Ctrl-C (SIGINT), and its receiver is told.
func readmeBroadcast(block, stage string, lines ...string) func(t *testing.T) map[string]string {
	return func(t *testing.T) map[string]string {
		server := StartServer(t, stage)
		receiver := Start(t, Binary(t, "clients/receiver"), nil, "-addr", server.Addr)
		receiver.NextLine(t)
		server.WaitLine(t, "Server: client connected")
		sender := startTTY(t, "clients/sender", "-addr", server.Addr)
		server.WaitLine(t, "Server: client connected")
		for i, line := range lines {
			typeLine(t, sender, i+1, line)
			server.WaitLine(t, "Server: received from client: "+line)
			require.Equal(t, "Message: "+line, receiver.NextLine(t))
		}
		sender.waitCount(t, "> ", len(lines)+1)
		transcript := serverTranscript
		if stage == "stage5-select" {
			transcript = stoppedTranscript
			server.Signal(t, os.Interrupt)
			require.Equal(t, 0, server.WaitExit(t, Deadline))
			receiver.WaitExit(t, Deadline)
			require.Equal(t, 0, sender.WaitExit(t, Deadline))
		}
		receiverOut := "$ go run ./clients/receiver\n" + strings.Join(receiver.Lines(), "\n") + "\n" + receiver.Stderr()
		return map[string]string{
			block + "/sender":   sender.transcript("go run ./clients/sender", server.Port),
			block + "/receiver": normalise(receiverOut, server.Port, false),
			block + "/server":   transcript("go run ./"+stage, server),
		}
	}
}

func readmeBusyPort(t *testing.T) map[string]string {
	server := StartServer(t, "stage5-select")
	return map[string]string{"stage5/busy-port": goRunFails(t, server, "./stage5-select")}
}

// readmeChat types half a line into the chat client, has someone else say something, and
// finishes the line: the screen must show the message on its own line and the half-typed
// line intact below it.
func readmeChat(t *testing.T) map[string]string {
	server := StartServer(t, "stage5-select")
	chat := startTTY(t, "clients/chat", "-addr", server.Addr)
	server.WaitLine(t, "Server: client connected")
	other := Dial(t, server.Addr)
	server.WaitLine(t, "Server: client connected")
	chat.waitCount(t, "> ", 1)
	chat.Type(t, "see y")
	chat.waitCount(t, "see y", 1)
	other.Send("Hello from the other side\r\n")
	chat.waitCount(t, "see y", 2)
	chat.Type(t, "ou\r")
	require.Equal(t, "see you\r\n", other.NextLine())
	chat.Type(t, ctrlC)
	require.Equal(t, 0, chat.WaitExit(t, Deadline))
	return map[string]string{
		"chat/screen": chat.transcript("go run ./clients/chat", server.Port),
	}
}

// readmeStage7 is stage 7's walkthrough: alice in the chat client, bob and carol at nc, a
// fourth person who asks for a name that is taken; a message for the room, a private one, /who,
// and alice leaving. Every step waits for what it causes, so that the server's log comes out in
// the same order on every run.
func readmeStage7(t *testing.T) map[string]string {
	server := StartServer(t, "stage7-identity")
	alice := startTTY(t, "clients/chat", "-addr", server.Addr)
	server.WaitLine(t, "Server: client connected")
	alice.waitCount(t, "What is your name?", 1)
	alice.Type(t, "alice\r")
	server.WaitLine(t, "Server: alice joined")
	alice.waitCount(t, "* The room is empty", 1)

	bob := joinNC(t, server, "bob", "* The room contains: alice")
	alice.waitCount(t, "* bob has entered the room", 1)
	bob.typeLine(t, "Hi alice! Who else is coming?")
	alice.waitCount(t, "[bob] Hi alice! Who else is coming?", 1)

	taken := joinNC(t, server, "alice", "* Sorry, the name alice is taken.")
	taken.ExpectClosed("")

	carol := joinNC(t, server, "carol", "* The room contains: alice, bob")
	bob.expect(t, "* carol has entered the room")
	alice.waitCount(t, "* carol has entered the room", 1)

	alice.Type(t, "Hello both\r")
	bob.expect(t, "[alice] Hello both")
	carol.expect(t, "[alice] Hello both")
	alice.Type(t, "/msg bob lunch at noon?\r")
	bob.expect(t, "[alice -> you] lunch at noon?")
	carol.typeLine(t, "/who")
	carol.expect(t, "* Present: alice, bob, carol")
	bob.ExpectNothing(100*time.Millisecond, "")

	alice.Type(t, ctrlC)
	require.Equal(t, 0, alice.WaitExit(t, Deadline))
	bob.expect(t, "* alice has left the room")
	carol.expect(t, "* alice has left the room")
	server.Signal(t, os.Interrupt)
	require.Equal(t, 0, server.WaitExit(t, Deadline))
	return map[string]string{
		"stage7/alice":  alice.transcript("go run ./clients/chat", server.Port),
		"stage7/bob":    bob.transcript(),
		"stage7/taken":  taken.transcript(),
		"stage7/carol":  carol.transcript(),
		"stage7/server": stoppedTranscript("go run ./stage7-identity", server),
	}
}

// readmeStage6 is stage 6's walkthrough: a receiver, and `yes | nc` flooding the room. The
// server slows the flooder down, says so once, and tells the flooder; then Ctrl-C. The
// server runs with -quiet, so that its log is not a line per "y".
func readmeStage6(t *testing.T) map[string]string {
	server := StartServer(t, "stage6-hardened", "-quiet")
	receiver := Dial(t, server.Addr)
	server.WaitLine(t, "Server: client connected")
	drainInput([]*member{{Client: receiver}})
	flooder := Dial(t, server.Addr)
	server.WaitLine(t, "Server: client connected")
	stop := make(chan struct{})
	flooding := make(chan struct{})
	go func() { // yes | nc: "y\n" as fast as the socket takes it, until the server stops
		defer close(flooding)
		chunk := []byte(strings.Repeat("y\n", 32<<10))
		for {
			select {
			case <-stop:
				return
			default:
			}
			flooder.Conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			var timeout net.Error
			if _, err := flooder.Conn.Write(chunk); err != nil && !(errors.As(err, &timeout) && timeout.Timeout()) {
				return
			}
		}
	}()
	server.WaitLine(t, "Server: client slowed down: sending faster than 65536 bytes/s")
	told := flooder.NextLine()
	server.Signal(t, os.Interrupt)
	require.Equal(t, 0, server.WaitExit(t, Deadline))
	close(stop)
	<-flooding
	return map[string]string{
		"stage6/server":  stoppedTranscript("go run ./stage6-hardened -quiet", server),
		"stage6/flooder": "$ yes | nc 127.0.0.1 5555\n" + strings.ReplaceAll(told, "\r\n", "\n"),
	}
}

// ncSession is a raw connection played as someone at `nc 127.0.0.1 5555`: its transcript is
// what their terminal shows, the lines they typed (which the terminal echoes) and the lines
// the server sent, in the order they happened.
type ncSession struct {
	*tester.Client
	screen strings.Builder
}

// joinNC connects a user of stage 7 at nc: asked for a name, it gives name, and the server
// answers with the line reply.
func joinNC(t *testing.T, server *Server, name, reply string) *ncSession {
	t.Helper()
	c := &ncSession{Client: Dial(t, server.Addr)}
	server.WaitLine(t, "Server: client connected")
	c.screen.WriteString("$ nc 127.0.0.1 5555\n")
	c.expect(t, "Welcome to the chat! What is your name?")
	c.typeLine(t, name)
	c.expect(t, reply)
	return c
}

// typeLine sends a line as nc does, ended by "\n".
func (c *ncSession) typeLine(t *testing.T, line string) {
	t.Helper()
	c.Send(line + "\n")
	c.screen.WriteString(line + "\n")
}

// expect reads the server's next line, which must be want ended by "\n".
func (c *ncSession) expect(t *testing.T, want string) {
	t.Helper()
	line := c.NextLine()
	require.Equal(t, want+"\n", line)
	c.screen.WriteString(line)
}

func (c *ncSession) transcript() string { return c.screen.String() }

func readmeCPUTable(t *testing.T) map[string]string {
	table := Start(t, Binary(t, "harness/cmd/cputable"), nil)
	require.Equal(t, 0, table.WaitExit(t, 2*time.Minute), "stderr: %s", table.Stderr())
	for _, line := range table.Lines() {
		require.LessOrEqual(t, utf8.RuneCountInString(line), 80, "wider than 80 columns: %s", line)
	}
	return map[string]string{
		"cputable": "$ go run ./harness/cmd/cputable\n" + strings.Join(table.Lines(), "\n") + "\n",
	}
}

// tty is a client running in a pseudo-terminal, with what the README's scenarios need.
type tty struct{ *PTYProcess }

const (
	ctrlC = "\x03"
	ctrlD = "\x04"
)

func startTTY(t *testing.T, pkg string, args ...string) *tty {
	t.Helper()
	return &tty{StartInPTY(t, Binary(t, pkg), args...)}
}

// waitCount waits until the client has written s at least n times.
func (c *tty) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	c.WaitUntil(t, fmt.Sprintf("%q %d times", s, n), func() bool { return strings.Count(c.Output(), s) >= n })
}

// transcript is what the client's terminal shows: the command, then the screen.
func (c *tty) transcript(command string, port int) string {
	screen := c.Screen() + "\n"
	// What a terminal shows: go run reports a program that failed with a line of its own.
	select {
	case <-c.exited:
		if strings.HasPrefix(command, "go run ") && c.exitCode > 0 && c.exitCode < 128 {
			screen += fmt.Sprintf("exit status %d\n", c.exitCode)
		}
	default:
	}
	return normalise("$ "+command+"\n"+screen, port, false)
}

// readmeCheck runs the check command against the deliberately broken relay of
// harness/testdata/broken that echoes each line to its sender, as the README shows it.
func readmeCheck(t *testing.T) map[string]string {
	bin := Binary(t, "harness/testdata/broken")
	out, code := checkCommand(t, "-stage", "4", "--", bin, "-mistake", "echo", "-addr", "{addr}")
	require.Equal(t, 1, code, out)
	out = tester.Rewrap(out, func(out string) string { return strings.ReplaceAll(out, bin, "go run ./harness/testdata/broken") })
	return map[string]string{"check/echo": "$ go run ./harness/cmd/check -stage 4 -- go run ./harness/testdata/broken -mistake echo -addr {addr}\n" +
		normaliseCheckPorts(out)}
}

// normaliseCheckPorts gives a check transcript the README's ports: the server's becomes
// 5555, and the clients' own ports 40001, 40002... in the order they appear.
func normaliseCheckPorts(out string) string {
	for _, server := range regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindAllStringSubmatch(out, -1) {
		out = strings.ReplaceAll(out, "port "+server[1], "port 5555")
		out = strings.ReplaceAll(out, ":"+server[1], ":5555")
	}
	clients := map[string]string{}
	return regexp.MustCompile(`\(port (\d+) ->`).ReplaceAllStringFunc(out, func(m string) string {
		port := regexp.MustCompile(`\d+`).FindString(m)
		if clients[port] == "" {
			clients[port] = fmt.Sprint(40001 + len(clients))
		}
		return "(port " + clients[port] + " ->"
	})
}

func init() {
	blockComparers["check/echo"] = checkOutcome
	blockComparers["check/buffered"] = checkOutcome
}

// readmeCheckBuffered runs the check command with -pipe against the corpus's C stage 1, which
// prints with printf and never flushes, as the README shows it.
func readmeCheckBuffered(t *testing.T) map[string]string {
	if _, err := exec.LookPath("cc"); err != nil {
		t.Skip("no C compiler (cc) on this machine")
	}
	root := RootDir(t)
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("cc", "-O2", "-o", bin, filepath.Join(root, "harness/testdata/corpus/c-stage1/server.c"))
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	text, code := checkCommand(t, "-stage", "1", "-pipe", "--", bin, "{port}")
	require.Equal(t, 1, code, text)
	require.Contains(t, strings.ReplaceAll(text, "\n      ", " "), "they were held in a buffer")
	text = tester.Rewrap(text, func(text string) string { return strings.ReplaceAll(text, bin, "./server") })
	if m := regexp.MustCompile(`started: \./server (\d+)`).FindStringSubmatch(text); m != nil {
		text = regexp.MustCompile(`\b`+m[1]+`\b`).ReplaceAllString(text, "5555")
	}
	return map[string]string{"check/buffered": "$ go run ./harness/cmd/check -stage 1 -pipe -- ./server {port}\n" +
		normaliseCheckPorts(text)}
}

// checkOutcome keeps of a check transcript what does not depend on timing: the server's own
// lines fall among the clients' wherever the scheduler puts them, and CPU figures vary.
func checkOutcome(out string) string {
	out = regexp.MustCompile(`(?m)^    \[your server\] .*\n`).ReplaceAllString(out, "")
	// A server that ends as its last client leaves may do so before or after the tester
	// begins to stop it.
	out = regexp.MustCompile(`(?m)^    \[tester\] your server ended by itself .*\n`).ReplaceAllString(out, "")
	return regexp.MustCompile(`\d+%`).ReplaceAllString(out, "N%")
}
