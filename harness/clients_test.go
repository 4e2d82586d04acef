package harness

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// The clients are tested against the final server; every stage from 2 on speaks the same
// protocol.
const clientsServer = "stage5-select"

func connectedLine(addr string) string {
	return "Client: connected to server on address " + addr
}

// startReceiver starts clients/receiver and waits until the server has it on its list.
func startReceiver(t *testing.T, s *Server) *Process {
	t.Helper()
	receiver := Start(t, Binary(t, "clients/receiver"), nil, "-addr", s.Addr)
	require.Equal(t, connectedLine(s.Addr), receiver.NextLine(t))
	s.WaitLine(t, "Server: client connected")
	return receiver
}

// stdinPipe gives a program a standard input that the test types into line by line.
func stdinPipe(t *testing.T) (programSide, testSide *os.File) {
	t.Helper()
	programSide, testSide, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { programSide.Close(); testSide.Close() })
	return programSide, testSide
}

// startChatOnPipes starts clients/chat with a pipe for its input, returning the pipe's end
// to type into, and waits for it to say it is connected and for the server to list it.
func startChatOnPipes(t *testing.T, s *Server) (chat *Process, typing *os.File) {
	t.Helper()
	stdin, typing := stdinPipe(t)
	chat = Start(t, Binary(t, "clients/chat"), stdin, "-addr", s.Addr)
	require.Equal(t, connectedLine(s.Addr), chat.NextLine(t))
	s.WaitLine(t, "Server: client connected")
	return chat, typing
}

// The article's sender and receiver, with the article's lines: the receiver prints exactly
// what the article shows, and the sender prompts before every line.
func TestClientsSendAndReceive(t *testing.T) {
	t.Parallel()
	s := StartServer(t, clientsServer)
	receiver := startReceiver(t, s)

	sender := Start(t, Binary(t, "clients/sender"),
		strings.NewReader("Hello\nHow are you?\nWhat are you doing?\n"), "-addr", s.Addr)
	require.Equal(t, 0, sender.WaitExit(t, Deadline), "stderr: %s", sender.Stderr())
	// Piped input is not echoed, so the prompts stand side by side; the last one, at the end
	// of input, is closed by a newline.
	if diff := cmp.Diff([]string{connectedLine(s.Addr), "> > > > "}, sender.Lines()); diff != "" {
		t.Fatalf("sender's output (-want +got):\n%s", diff)
	}

	want := []string{
		"Message: Hello",
		"Message: How are you?",
		"Message: What are you doing?",
	}
	receiver.ExpectLines(t, want...)

	s.WaitLine(t, "Server: client connected")
	for _, line := range []string{"Hello", "How are you?", "What are you doing?"} {
		require.Equal(t, "Server: received from client: "+line, s.NextLine(t))
	}
	// The sender left in good order: the server saw an end of stream, not an error.
	require.Equal(t, "Server: client disconnected", s.NextLine(t))
	require.Empty(t, sender.Stderr())
}

// A receiver ends when our server stops: it says the server closed the connection, and exits
// 0. (Resets and a server's last line: TestClientsServerGoneAfterLastLineOrReset.)
func TestClientsReceiverServerGone(t *testing.T) {
	t.Parallel()
	t.Run("closed", func(t *testing.T) {
		s := StartServer(t, clientsServer)
		receiver := startReceiver(t, s)
		s.Kill()
		require.Equal(t, "Client: the server closed the connection", receiver.NextLine(t))
		require.Equal(t, 0, receiver.WaitExit(t, Deadline))
		require.Empty(t, receiver.Stderr())
	})

}

// lastWords is what stage 5 sends a client it drops, just before it closes the connection.
const lastWords = "Server: line longer than 65536 bytes, disconnecting you\r\n"

// testServer is a server of the test's own, for what our stages cannot be made to do on
// demand: reset a connection, close it right after a last line, or show exactly which bytes
// a client sent.
type testServer struct {
	listener *net.TCPListener
	Addr     string
}

func startTestServer(t *testing.T) *testServer {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { listener.Close() })
	return &testServer{listener: listener.(*net.TCPListener), Addr: listener.Addr().String()}
}

// accept waits for the next client; its connection is closed when the test ends.
func (s *testServer) accept(t *testing.T) *net.TCPConn {
	t.Helper()
	require.NoError(t, s.listener.SetDeadline(time.Now().Add(Deadline)))
	conn, err := s.listener.AcceptTCP()
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// resetConnection closes conn with a reset (RST) instead of an end of stream (FIN).
func resetConnection(t *testing.T, conn *net.TCPConn) {
	t.Helper()
	require.NoError(t, conn.SetLinger(0))
	require.NoError(t, conn.Close())
}

// readUntilEnd returns every byte the client sends until it closes its side.
func readUntilEnd(t *testing.T, conn *net.TCPConn) string {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(Deadline)))
	received, err := io.ReadAll(conn)
	require.NoError(t, err, "the client sent %q and then did not close", received)
	return string(received)
}

// connectToTestServer starts the client in pkg against a test server and returns it once it
// says it is connected, with the server's end of its connection.
func connectToTestServer(t *testing.T, pkg string) (*Process, *net.TCPConn, *testServer) {
	t.Helper()
	server := startTestServer(t)
	stdin, _ := stdinPipe(t)
	client := Start(t, Binary(t, pkg), stdin, "-addr", server.Addr)
	conn := server.accept(t)
	// Only once the client knows it is connected: a reset that came before would fail its
	// connect instead.
	require.Equal(t, connectedLine(server.Addr), client.NextLine(t))
	return client, conn, server
}

// When the server resets the connection, every client says in one line that it lost it and
// exits 1. When the server sends a last line and ends the stream in good order, as stage 5 does
// for a client it drops, the receiver and the chat show that line, say that the server closed
// the connection, and exit 0 (the sender shows nothing the server sends).
func TestClientsServerGoneAfterLastLineOrReset(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		shown bool     // it shows what the server sends
		more  []string // what it prints after its connected line
	}{{"receiver", true, nil}, {"sender", false, []string{"> "}}, {"chat", true, nil}} {
		t.Run(c.name+"/reset", func(t *testing.T) {
			client, conn, server := connectToTestServer(t, "clients/"+c.name)
			resetConnection(t, conn)
			require.Equal(t, 1, client.WaitExit(t, Deadline))
			require.Equal(t, c.name+": lost the connection to "+server.Addr+": connection reset by peer\n",
				client.Stderr())
			require.Equal(t, append([]string{connectedLine(server.Addr)}, c.more...), client.Lines())
		})
		if !c.shown {
			continue
		}
		t.Run(c.name+"/last line", func(t *testing.T) {
			client, conn, _ := connectToTestServer(t, "clients/"+c.name)
			conn.Write([]byte(lastWords))
			conn.Close()
			client.ExpectLines(t, "Message: "+strings.TrimSuffix(lastWords, "\r\n"),
				"Client: the server closed the connection")
			require.Equal(t, 0, client.WaitExit(t, Deadline))
			require.Empty(t, client.Stderr())
		})
	}
}

// Every client says in one line that nobody listens, and exits 1.
func TestClientsCannotConnect(t *testing.T) {
	t.Parallel()
	// A port that was free a moment ago: nobody listens on it.
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := listener.Addr().String()
	listener.Close()

	for _, client := range []string{"sender", "receiver", "chat"} {
		t.Run(client, func(t *testing.T) {
			p := Start(t, Binary(t, "clients/"+client), strings.NewReader("Hello\n"), "-addr", addr)
			require.Equal(t, 1, p.WaitExit(t, Deadline))
			require.Equal(t, client+": cannot connect to "+addr+": connection refused\n", p.Stderr())
			require.Empty(t, p.Lines())
		})
	}
}

// A sender learns at once that its server has gone, without waiting for you to type: it
// reads its socket in the background, and an end of stream there is the server closing in
// good order (exit 0). (A reset: TestClientsServerGoneAfterLastLineOrReset.)
func TestClientsSenderServerGone(t *testing.T) {
	t.Parallel()
	s := StartServer(t, clientsServer)
	stdin, typing := stdinPipe(t)
	sender := Start(t, Binary(t, "clients/sender"), stdin, "-addr", s.Addr)
	s.WaitLine(t, "Server: client connected")
	_, err := typing.WriteString("Hello\n")
	require.NoError(t, err)
	s.WaitLine(t, "Server: received from client: Hello")
	s.Kill()
	require.Equal(t, 0, sender.WaitExit(t, Deadline), "stderr: %s", sender.Stderr())
	// The prompt for the line never typed is ended by a newline.
	want := []string{connectedLine(s.Addr), "> > ", "Client: the server closed the connection"}
	if diff := cmp.Diff(want, sender.Lines()); diff != "" {
		t.Fatalf("sender's output (-want +got):\n%s", diff)
	}
	require.Empty(t, sender.Stderr())
}

// With -no-newline the sender does what the article's first client did, and stage 1 shows
// the lesson: the two messages arrive cut into 10-byte pieces and run together.
func TestClientsSenderNoNewline(t *testing.T) {
	t.Parallel()
	s := StartServer(t, "stage1-blocking")
	sender := Start(t, Binary(t, "clients/sender"),
		strings.NewReader("Hello, world\nLorem ipsum dolor sit amet, consectetur adipiscing elit.\n"),
		"-addr", s.Addr, "-no-newline")
	require.Equal(t, "Server: client connected", s.NextLine(t))
	s.ExpectLines(t, articlePieces...)
	require.Equal(t, 0, sender.WaitExit(t, Deadline), "stderr: %s", sender.Stderr())
	s.WaitLine(t, "Server: client disconnected")
}

// On pipes the chat sends and receives at the same time: a message is shown while the chat
// waits for input that has not come, and a line sent meanwhile reaches the others. End of
// input ends it in good order.
func TestClientsChatPipes(t *testing.T) {
	t.Parallel()
	s := StartServer(t, clientsServer)
	chat, typing := startChatOnPipes(t, s)
	other := Dial(t, s.Addr)
	s.WaitLine(t, "Server: client connected")

	// Nothing has been typed, and yet the message is shown.
	other.Send("Hello, chat\r\n")
	require.Equal(t, "Message: Hello, chat", chat.NextLine(t))

	// And the chat still sends what is typed.
	_, err := typing.WriteString("Hello, other\n")
	require.NoError(t, err)
	require.Equal(t, "Hello, other\r\n", other.NextLine())
	other.Send("Bye\r\n")
	require.Equal(t, "Message: Bye", chat.NextLine(t))

	// The end of input is the end of the chat: the last line, without a newline, still goes.
	_, err = typing.WriteString("Bye")
	require.NoError(t, err)
	typing.Close()
	require.Equal(t, "Bye\r\n", other.NextLine())
	require.Equal(t, "Client: disconnected", chat.NextLine(t))
	require.Equal(t, 0, chat.WaitExit(t, Deadline))
	require.Empty(t, chat.Stderr())
	s.WaitLine(t, "Server: client disconnected")
}

// A chat whose server goes away says so at once, in one line: unlike the article's sender,
// it does not wait for you to type. An end of stream is the server closing in good order
// (exit 0). (Resets and a server's last line: TestClientsServerGoneAfterLastLineOrReset.)
func TestClientsChatServerGone(t *testing.T) {
	t.Parallel()
	s := StartServer(t, clientsServer)
	chat, _ := startChatOnPipes(t, s)
	s.Kill()
	require.Equal(t, 0, chat.WaitExit(t, Deadline))
	require.Empty(t, chat.Stderr())
	require.Equal(t, []string{connectedLine(s.Addr), "Client: the server closed the connection"}, chat.Lines())
}

// startChatInTerminal starts clients/chat in a pseudo-terminal of columns by 24, waits for
// its prompt (drawn once the terminal is in raw mode) and for the server to list it.
func startChatInTerminal(t *testing.T, s *Server, columns int) *PTYProcess {
	t.Helper()
	chat := StartInPTYOfSize(t, columns, 24, Binary(t, "clients/chat"), "-addr", s.Addr)
	chat.WaitOutput(t, connectedLine(s.Addr)+"\r\n> ")
	s.WaitLine(t, "Server: client connected")
	return chat
}

// chatWithOther starts the server, clients/chat in a terminal of columns by 24, and another
// client to talk with, once the server has listed both.
func chatWithOther(t *testing.T, columns int) (*Server, *PTYProcess, *tester.Client) {
	t.Helper()
	s := StartServer(t, clientsServer)
	chat := startChatInTerminal(t, s, columns)
	other := Dial(t, s.Addr)
	s.WaitLine(t, "Server: client connected")
	return s, chat, other
}

// In a terminal, a message that arrives while a line is half typed appears on a line of its
// own above it, and the half-typed line is drawn again below, whole, ready to be finished.
func TestClientsChatTerminal(t *testing.T) {
	t.Parallel()
	s, chat, other := chatWithOther(t, 80)

	// Some editing on the way: Ctrl-U clears the line, Backspace removes a whole character
	// even when it is several bytes long, an arrow key types nothing.
	chat.Type(t, "nonsense\x15")
	chat.Type(t, "see yé\x7f\x1b[D")
	chat.WaitScreen(t, "\n> see y")

	other.Send("Hello from the other side\r\n")
	chat.WaitScreen(t, "Message: Hello from the other side\n> see y")
	wantScreen := connectedLine(s.Addr) + "\n" +
		"Message: Hello from the other side\n" +
		"> see y"
	if diff := cmp.Diff(wantScreen, chat.Screen()); diff != "" {
		t.Fatalf("screen (-want +got):\n%s\nraw: %q", diff, chat.Output())
	}

	chat.Type(t, "ou\r")
	require.Equal(t, "see you\r\n", other.NextLine())
	s.WaitLine(t, "Server: received from client: see you")

	// Ctrl-C arrives as a key in raw mode: the chat puts the terminal back and leaves.
	chat.Type(t, "\x03")
	require.Equal(t, 0, chat.WaitExit(t, Deadline))
	require.True(t, chat.TerminalRestored(), "the chat left the terminal in raw mode")
	wantScreen += "ou\n>\nClient: disconnected" // the screen shows no trailing spaces
	if diff := cmp.Diff(wantScreen, chat.Screen()); diff != "" {
		t.Fatalf("screen (-want +got):\n%s\nraw: %q", diff, chat.Output())
	}
	s.WaitLine(t, "Server: client disconnected")
}

// Every way out of the chat in a terminal puts the terminal back as it was.
func TestClientsChatTerminalWaysOut(t *testing.T) {
	t.Parallel()
	s := StartServer(t, clientsServer)
	for _, way := range []struct {
		name      string
		leave     func(t *testing.T, chat *PTYProcess)
		exitCode  int
		lastWords string
	}{
		{"Ctrl-D on an empty line", func(t *testing.T, chat *PTYProcess) {
			chat.Type(t, "x\x04") // not on a line with text in it
			chat.WaitOutput(t, "> x")
			chat.Type(t, "\x7f\x04")
		}, 0, "Client: disconnected"},
		{"SIGTERM", func(t *testing.T, chat *PTYProcess) {
			chat.Signal(t, syscall.SIGTERM)
		}, 0, "Client: disconnected"},
		{"the server goes away", func(t *testing.T, chat *PTYProcess) {
			s.Kill()
		}, 0, "Client: the server closed the connection"},
	} {
		t.Run(way.name, func(t *testing.T) {
			chat := startChatInTerminal(t, s, 80)
			way.leave(t, chat)
			require.Equal(t, way.exitCode, chat.WaitExit(t, Deadline), "screen:\n%s", chat.Screen())
			require.True(t, chat.TerminalRestored(), "the chat left the terminal in raw mode")
			screen := strings.Split(chat.Screen(), "\n")
			require.Equal(t, way.lastWords, screen[len(screen)-1])
		})
	}
}

// waitForScreen waits until the terminal shows exactly the rows want, failing the test with a
// diff of the last screen seen after the Deadline. Rows scrolled off the top count too.
func waitForScreen(t *testing.T, p *PTYProcess, want []string) {
	t.Helper()
	wantScreen := strings.Join(want, "\n")
	timeout := time.NewTimer(Deadline)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		grew := p.grew
		p.mu.Unlock()
		if p.Screen() == wantScreen {
			return
		}
		select {
		case <-grew:
		case <-timeout.C:
			t.Fatalf("screen after %v (-want +got):\n%s\nraw: %q", Deadline,
				cmp.Diff(want, strings.Split(p.Screen(), "\n")), p.Output())
		}
	}
}

// longLine is 100 characters of typing, words that show where a row was cut.
func longLine() string {
	var line strings.Builder
	for i := 0; line.Len() < 100; i++ {
		fmt.Fprintf(&line, "word%02d ", i)
	}
	return line.String()[:100]
}

// inRows cuts text into the rows of a terminal width columns wide.
func inRows(text string, width int) []string {
	var rows []string
	for len(text) > width {
		rows, text = append(rows, text[:width]), text[width:]
	}
	return append(rows, text)
}

// A line longer than the terminal is wide takes several rows, and the chat must erase all of
// them before it draws a message and the line again below it, or each message (and each
// Backspace) leaves a stale copy of the line's first rows on the screen. At 40 columns: type
// 100 characters (three rows with the prompt), receive three messages (one of them wider than
// the terminal too), press Backspace three times: the screen must show each message once, and
// the line once, whole, minus its last three characters.
func TestClientsChatLongLine(t *testing.T) {
	t.Parallel()
	s, chat, other := chatWithOther(t, 40)

	line := longLine()
	chat.Type(t, line)
	rows := append(inRows(connectedLine(s.Addr), 40), inRows("> "+line, 40)...)
	waitForScreen(t, chat, rows)

	messages := []string{"first", "a second message, wider than the terminal, in two rows", "third"}
	rows = inRows(connectedLine(s.Addr), 40)
	for _, message := range messages {
		other.Send(message + "\r\n")
		rows = append(rows, inRows("Message: "+message, 40)...)
		waitForScreen(t, chat, append(rows, inRows("> "+line, 40)...))
	}

	chat.Type(t, "\x7f\x7f\x7f")
	waitForScreen(t, chat, append(rows, inRows("> "+line[:97], 40)...))

	// What is sent is the line as it stands, in one piece, and it stays on the screen.
	chat.Type(t, "\r")
	require.Equal(t, line[:97]+"\r\n", other.NextLine())
	rows = append(rows, inRows("> "+line[:97], 40)...)

	// A line that fills its last row exactly leaves the cursor in that row's last column,
	// not at the start of the next: the erase must go up one row fewer than the rows it
	// fills, or it takes the row above with it.
	chat.Type(t, line[:78])
	waitForScreen(t, chat, append(rows, inRows("> "+line[:78], 40)...))
	other.Send("fourth\r\n")
	rows = append(rows, "Message: fourth")
	waitForScreen(t, chat, append(rows, inRows("> "+line[:78], 40)...))
}

// The chat follows the terminal's width as it changes (SIGWINCH): a line typed at 80 columns
// takes three rows once the terminal is 40 wide (the terminal rewraps it, as tmux does), and
// the redraw for a message must erase all three.
func TestClientsChatResize(t *testing.T) {
	t.Parallel()
	s, chat, other := chatWithOther(t, 80)

	line := longLine()
	chat.Type(t, line)
	waitForScreen(t, chat, []string{connectedLine(s.Addr), "> " + line[:78], line[78:]})

	// The chat draws the line again when told of the resize: wait for that before the
	// message, or the message could be drawn before the chat has heard of the new width.
	chat.Resize(t, 40, 24)
	chat.WaitOutput(t, "\x1b[J> "+line)
	other.Send("Hello\r\n")
	rows := append(inRows(connectedLine(s.Addr), 40), "Message: Hello")
	waitForScreen(t, chat, append(rows, inRows("> "+line, 40)...))
}

// A tab is typed like any character (a paste brings them too): it is sent as a tab, drawn as
// spaces up to the next multiple of 8 columns, and erased by one Backspace.
func TestClientsChatTab(t *testing.T) {
	t.Parallel()
	s, chat, other := chatWithOther(t, 80)

	chat.Type(t, "a\tb")
	waitForScreen(t, chat, []string{connectedLine(s.Addr), "> a     b"})
	chat.Type(t, "\r")
	require.Equal(t, "a\tb\r\n", other.NextLine())

	chat.Type(t, "x\t\x7fy\r")
	require.Equal(t, "xy\r\n", other.NextLine())
}

// screenClasses are the kinds of characters a line can hold, each with what the receiver and
// the chat show for it: the server's log rule (printMessage in stage 5's log.go). Those that
// could drive the terminal, turn the text around or hide are escaped, a control byte or a byte
// that is not UTF-8 as \xNN, a character as \uNNNN; the text of every script stays as it is.
var screenClasses = []struct{ name, sent, shown string }{
	// U+202E shows what follows right to left, so that this reads "evil exe.png".
	{"bidi override", "evil \u202egnp.exe, \u202dforced\u202c, \u202aembedded\u202c \u202bembedded\u202c",
		`evil \u202egnp.exe, \u202dforced\u202c, \u202aembedded\u202c \u202bembedded\u202c`},
	{"bidi isolate", "\u2066left\u2069 \u2067right\u2069 \u2068first strong\u2069",
		`\u2066left\u2069 \u2067right\u2069 \u2068first strong\u2069`},
	{"zero-width", "ad\u200bmin \u200cnon-joiner \u200djoiner \u200eLRM \u200fRLM word\u2060joiner \ufeffBOM",
		`ad\u200bmin \u200cnon-joiner \u200djoiner \u200eLRM \u200fRLM word\u2060joiner \ufeffBOM`},
	// Category Cf beyond the two above: a soft hyphen, the Arabic letter mark, the Mongolian
	// vowel separator, an interlinear annotation anchor, a tag character (beyond U+FFFF).
	{"other format characters", "soft\u00adhyphen \u061cALM \u180eMVS \ufff9IAA tag\U000e0041",
		`soft\u00adhyphen \u061cALM \u180eMVS \ufff9IAA tag\U000e0041`},
	// Not printable, not format: a line separator, a no-break space, private use, unassigned.
	{"other characters that are not printable", "line\u2028separator no-break\u00a0space private\ue000 unassigned\u0378",
		`line\u2028separator no-break\u00a0space private\ue000 unassigned\u0378`},
	// ESC [ 2 J clears the screen, and U+009B is ESC [ to some terminals; CR goes back over
	// the line; a tab stays.
	{"control bytes", "\x1b[2Jcleared nul\x00 del\x7f bell\x07 \rback \u009b31mC1 tab\tstays",
		`\x1b[2Jcleared nul\x00 del\x7f bell\x07 \x0dback \u009b31mC1 tab` + "\t" + `stays`},
	{"invalid UTF-8", "bad \xff\xfe cut \xe2\x82 overlong \xc0\xaf surrogate \xed\xa0\x80 beyond \xf4\x90\x80\x80",
		`bad \xff\xfe cut \xe2\x82 overlong \xc0\xaf surrogate \xed\xa0\x80 beyond \xf4\x90\x80\x80`},
	{"accented Latin", "naïve café Ørsted Dvořák Łódź straße e\u0301 (a combining accent)",
		"naïve café Ørsted Dvořák Łódź straße e\u0301 (a combining accent)"},
	{"Arabic and Hebrew", "مرحبا بالعالم، שָׁלוֹם עולם", "مرحبا بالعالم، שָׁלוֹם עולם"},
	{"CJK", "日本語のテキスト、中文，한국어", "日本語のテキスト、中文，한국어"},
	{"emoji", "🙂 👍🏽 ❤️ 🇫🇷 🀄", "🙂 👍🏽 ❤️ 🇫🇷 🀄"},
}

// Another client's line must not drive our terminal, turn its text around or hide in it,
// and text in any script must show as it is: one subtest per class of characters, each
// through the receiver, the chat on pipes and the chat in a terminal. The server relays the
// bytes as they came.
func TestClientsScreenSafe(t *testing.T) {
	t.Parallel()
	for _, class := range screenClasses {
		t.Run(class.name, func(t *testing.T) {
			s := StartServer(t, clientsServer)
			other := Dial(t, s.Addr)
			s.WaitLine(t, "Server: client connected")
			shown := "Message: " + class.shown

			t.Run("receiver", func(t *testing.T) {
				receiver := startReceiver(t, s)
				other.Send(class.sent + "\r\n")
				require.Equal(t, shown, receiver.NextLine(t))
			})

			t.Run("chat", func(t *testing.T) {
				chat, _ := startChatOnPipes(t, s)
				other.Send(class.sent + "\r\n")
				require.Equal(t, shown, chat.NextLine(t))
			})

			t.Run("chat in a terminal", func(t *testing.T) {
				chat := startChatInTerminal(t, s, 80)
				other.Send(class.sent + "\r\n")
				// Every byte written to the terminal: the message, and the prompt below it.
				chat.WaitOutput(t, "\x1b[J"+shown+"\r\n> ")
			})
		})
	}
}

// The clients and the server's log escape by the same rule, written twice (stages import
// nothing from this module, and the clients import no stage): one line that holds every class
// goes through stage 6 (whose log is the first to escape) and stage 7, and the server's log
// and the receiver must show the same text for it.
func TestClientsEscapeLikeTheServerLog(t *testing.T) {
	t.Parallel()
	var sent, shown []string
	for _, class := range screenClasses {
		sent = append(sent, class.sent)
		shown = append(shown, class.shown)
	}
	line := strings.Join(sent, " | ")
	want := strings.Join(shown, " | ")

	t.Run("stage 6", func(t *testing.T) {
		s := StartServer(t, stage6)
		receiver := startReceiver(t, s)
		other := Dial(t, s.Addr)
		s.WaitLine(t, "Server: client connected")
		other.Send(line + "\n")
		logged, ok := strings.CutPrefix(s.NextLine(t), "Server: received from client: ")
		require.True(t, ok, "not a received line: %q", logged)
		printed, ok := strings.CutPrefix(receiver.NextLine(t), "Message: ")
		require.True(t, ok, "not a message: %q", printed)
		require.Equal(t, logged, printed, "the server's log and the receiver disagree")
		require.Equal(t, want, printed)
	})

	t.Run("stage 7", func(t *testing.T) {
		s := StartServer(t, stage7)
		receiver := Start(t, Binary(t, "clients/receiver"), nil, "-addr", s.Addr, "-name", "bob")
		receiver.ExpectLines(t, connectedLine(s.Addr), "Message: "+strings.TrimSuffix(stage7Welcome, "\n"))
		s.WaitLine(t, "Server: bob joined")
		alice := joinStage7(t, s, "alice", "bob")
		alice.Send(line + "\n")
		logged, ok := strings.CutPrefix(s.NextLine(t), "Server: received from alice: ")
		require.True(t, ok, "not a received line: %q", logged)
		receiver.ExpectLines(t, "Message: "+strings.TrimSuffix(presenceLine(), "\n"),
			"Message: * alice has entered the room")
		printed, ok := strings.CutPrefix(receiver.NextLine(t), "Message: [alice] ")
		require.True(t, ok, "not a message from alice: %q", printed)
		require.Equal(t, logged, printed, "the server's log and the receiver disagree")
		require.Equal(t, want, printed)
	})
}

// -h tells what the program is and how to use it, under its own name (not the path go run
// builds it at), and an argument that is not a flag is refused in one line, with exit 2 as
// for a wrong flag.
func TestClientsUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		client string
		about  []string // what the usage must say besides the flags
	}{
		{"sender", []string{"Sends every line you type to the chat server"}},
		{"receiver", []string{"Prints every message the chat server sends"}},
		{"chat", []string{"shows what the others say", "Enter", "Backspace", "Ctrl-U", "Ctrl-C", "Ctrl-D on an empty line"}},
	} {
		t.Run(tc.client, func(t *testing.T) {
			help := Start(t, Binary(t, "clients/"+tc.client), nil, "-h")
			require.Equal(t, 0, help.WaitExit(t, Deadline))
			usage := help.Stderr()
			require.True(t, strings.HasPrefix(usage, "Usage: "+tc.client+" [flags]\n"), "usage: %s", usage)
			for _, about := range append(tc.about, "-addr", "-name NAME") {
				require.Contains(t, usage, about)
			}

			extra := Start(t, Binary(t, "clients/"+tc.client), nil, "-addr", "127.0.0.1:1", "extra")
			require.Equal(t, 2, extra.WaitExit(t, Deadline))
			require.Equal(t, tc.client+": unexpected argument \"extra\" ("+tc.client+" -h shows the flags)\n",
				extra.Stderr())
			require.Empty(t, extra.Lines())
		})
	}
}

// The bytes on the wire, exactly: every line ends in "\r\n", whether it was typed with "\n",
// with "\r\n", or was the last piece of the input without a newline; with -name NAME, the name
// goes first, as a line of its own; and the client ends by closing its side (the test server
// reads up to that end).
func TestClientsWireBytes(t *testing.T) {
	t.Parallel()
	const typed = "Hello\nHow are you?\r\n\tindented\nno newline at the end"
	const sent = "Hello\r\nHow are you?\r\n\tindented\r\nno newline at the end\r\n"
	for _, client := range []string{"sender", "chat"} {
		for _, name := range []string{"", "alice"} {
			t.Run(client+" -name="+name, func(t *testing.T) {
				server := startTestServer(t)
				args := []string{"-addr", server.Addr}
				want := sent
				if name != "" {
					args = append(args, "-name", name)
					want = name + "\r\n" + sent
				}
				p := Start(t, Binary(t, "clients/"+client), strings.NewReader(typed), args...)
				conn := server.accept(t)
				require.Equal(t, want, readUntilEnd(t, conn))
				conn.Close()
				require.Equal(t, 0, p.WaitExit(t, Deadline), "stderr: %s", p.Stderr())
			})
		}
	}

	t.Run("chat in a terminal", func(t *testing.T) {
		server := startTestServer(t)
		chat := StartInPTY(t, Binary(t, "clients/chat"), "-addr", server.Addr, "-name", "alice")
		conn := server.accept(t)
		chat.WaitOutput(t, "\r\n> ")
		chat.Type(t, "Hello\r\tindented\r\x03")
		require.Equal(t, "alice\r\nHello\r\n\tindented\r\n", readUntilEnd(t, conn))
		conn.Close()
		require.Equal(t, 0, chat.WaitExit(t, Deadline))
	})
}

// With -name the clients can join a server that asks who you are (stage 7): the name is the
// first line sent, and the server's question is shown as a message like any other line.
func TestClientsName(t *testing.T) {
	t.Parallel()
	const question = "Welcome to the chat! What is your name?\n" // stage 7 ends its lines in "\n"
	for _, client := range []string{"receiver", "chat"} {
		t.Run(client, func(t *testing.T) {
			server := startTestServer(t)
			stdin, _ := stdinPipe(t)
			p := Start(t, Binary(t, "clients/"+client), stdin, "-addr", server.Addr, "-name", "alice")
			conn := server.accept(t)
			_, err := conn.Write([]byte(question))
			require.NoError(t, err)
			require.NoError(t, conn.SetReadDeadline(time.Now().Add(Deadline)))
			name, err := bufio.NewReader(conn).ReadString('\n')
			require.NoError(t, err)
			require.Equal(t, "alice\r\n", name)
			p.ExpectLines(t, connectedLine(server.Addr), "Message: Welcome to the chat! What is your name?")
			conn.Close()
			require.Equal(t, "Client: the server closed the connection", p.NextLine(t))
			require.Equal(t, 0, p.WaitExit(t, Deadline))
		})
	}
}

// The README says what each netcat does once the server has closed the connection, as stage 7
// does after refusing a name: netcat-traditional exits at once; netcat-openbsd exits without a
// word at the next line typed; ncat at the line after that, with "Ncat: Broken pipe.". Each
// netcat installed here is checked (the README's figures: netcat-openbsd 1.219,
// netcat-traditional 1.10, ncat 7.93); one that is not is skipped.
func TestClientsNetcatAfterARefusedName(t *testing.T) {
	t.Parallel()
	const stays = 500 * time.Millisecond // long enough to see that a netcat did not exit
	for _, nc := range []struct {
		command, banner string // the program, and how the first line of its -h starts
		linesToExit     int    // lines typed after the refusal before it exits
		exitCode        int
		stderr          string
	}{
		{"nc.traditional", "[v1.10", 0, 0, ""},
		{"nc.openbsd", "OpenBSD netcat", 1, 0, ""},
		{"ncat", "Ncat ", 2, 1, "Ncat: Broken pipe.\n"},
	} {
		t.Run(nc.command, func(t *testing.T) {
			path, err := exec.LookPath(nc.command)
			if err != nil {
				t.Skipf("%s is not installed", nc.command)
			}
			help, _ := exec.Command(path, "-h").CombinedOutput()
			version, _, _ := strings.Cut(string(help), "\n")
			if !strings.HasPrefix(version, nc.banner) {
				t.Skipf("%s is not the netcat the README describes: %q", nc.command, version)
			}

			s := StartServer(t, stage7)
			stdin, typing := stdinPipe(t)
			p := Start(t, path, stdin, "127.0.0.1", strconv.Itoa(s.Port))
			require.Equal(t, strings.TrimSuffix(stage7Welcome, "\n"), p.NextLine(t))
			_, err = typing.WriteString("bad name!\n")
			require.NoError(t, err)
			require.Equal(t, strings.TrimSuffix(stage7Illegal, "\n"), p.NextLine(t))
			s.WaitLine(t, `Server: client disconnected (illegal name "bad name!")`)

			for i := range nc.linesToExit {
				_, exited := p.ExitState(stays)
				require.False(t, exited, "%s (%s) exited after %d lines, the README says after %d",
					nc.command, version, i, nc.linesToExit)
				_, err = typing.WriteString("lost\n")
				require.NoError(t, err)
			}
			require.Equal(t, nc.exitCode, p.WaitExit(t, Deadline), "%s (%s): exit status", nc.command, version)
			require.Equal(t, nc.stderr, p.Stderr(), "%s (%s)", nc.command, version)
			require.Equal(t, []string{
				strings.TrimSuffix(stage7Welcome, "\n"), strings.TrimSuffix(stage7Illegal, "\n"),
			}, p.Lines())
		})
	}
}
