//go:build linux || darwin

package tester

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// StageTitles names each stage's lesson, as the check command prints it.
var StageTitles = map[int]string{
	1: "a blocking server reads 10-byte pieces",
	2: "whole lines, SO_REUSEADDR, one client",
	3: "non-blocking sockets, many clients",
	4: "broadcast",
	5: "select: sleep until a socket is ready",
	6: "a room you do not trust",
	7: "names and presence (Budget Chat)",
	8: "one room across many servers (no checks)",
}

// StageChecks lists the checks of a stage, in the order of the table of checks: required
// ones first.
func StageChecks(stage int) []Check {
	var list []Check
	for _, check := range checks {
		if slices.Contains(check.Stages, stage) {
			list = append(list, check)
		}
	}
	return list
}

// The log of stages 1 to 3 is judged by its ends only: what comes before a message is the
// server's own affair.
const logStyle = "our log says `Server: received from client: MESSAGE`; any line that ends " +
	"with the message will do"

// budgetTexts is what Budget Chat leaves to the server, and what ours say.
const budgetTexts = "our texts (\"Welcome to the chat! What is your name?\", " +
	"\"* The room contains: alice, bob\", \"* bob has entered the room\") are examples: the " +
	"statement fixes only the leading \"*\" and the names"

// checks is every check of every stage: its Stages say where it runs, and its place in the
// table the order. Stages 1 to 3 show their lesson only in the server's log, so their checks
// read it, looking for lines that end with each message (`Server: received from client:
// Hello`); from stage 4 on, the checks look only at what the clients receive, and up to
// stage 5 past the server's house style (style.go). Each check says what the lesson (or, at
// stage 7, Budget Chat's statement) requires, and what is only how our stages do it. Stages
// 8 and 9 have no checks: what they add (servers that share a room) cannot be seen from one
// server's clients.
var checks = []Check{
	{Name: "pieces", Stages: []int{1}, Title: "two messages come out as 10-byte pieces in the log", Required: true,
		Requires: "the stream is read 10 bytes at a time and each piece printed as it comes, " +
			"so that the log shows that TCP keeps no message boundaries",
		Ours: logStyle, Run: checkPieces},
	{Name: "lines", Stages: []int{2}, Title: `whole lines in the log, ended by "\n" or "\r\n"`, Required: true,
		Requires: `each line is read up to its end, "\n" or "\r\n", and printed whole without its terminator`,
		Ours:     logStyle, Run: checkLines},
	{Name: "restart", Stages: []int{2}, Title: "a restart right after a stop with a client connected", Required: true,
		Requires: "SO_REUSEADDR: the server listens again on its port at once, though the " +
			"last connection waits in TIME_WAIT",
		Run: checkRestart},
	{Name: "second-client", Stages: []int{2}, Title: "is a second client served?", Required: false,
		Ours: "stage 2 serves one client; stage 3 is the step that serves more", Run: observeSecondClient},
	{Name: "clients", Stages: []int{3}, Title: "several clients, every line of each in the log", Required: true,
		Requires: "non-blocking sockets in one loop: every connected client is read", Ours: logStyle,
		Run: checkClients},
	{Name: "leave", Stages: []int{3}, Title: "a client leaves: the rest still heard", Required: true,
		Requires: "a read of 0 bytes means the client left: the server drops it and goes on " +
			"reading the others",
		Ours: "our log says `Server: client disconnected`; that line is only reported", Run: checkLeaveLog},
	{Name: "reset", Stages: []int{3}, Title: "a client vanishes with a reset: the rest still heard", Required: true,
		Requires: "a connection reset (ECONNRESET) is one more way a client leaves: the server " +
			"stays up and goes on reading the others and accepting newcomers",
		Run: checkResetLog},
	{Name: "broadcast", Stages: []int{4, 5, 6}, Title: "every line to every other client, not its sender", Required: true,
		Requires: "each line goes to every other client, never back to its sender; " +
			`it may end in "\n" or "\r\n"`,
		Ours: `ours end every relayed line in "\r\n", as the article's do`, Run: checkBroadcast},
	{Name: "leave", Stages: []int{4, 5}, Title: "a client leaves: the others still hear each other", Required: true,
		Requires: "a client that left is dropped, and a failed write to it does not stop the broadcast",
		Run:      checkLeave},
	{Name: "reset", Stages: []int{4, 5}, Title: "a client vanishes with a reset: the others still served", Required: true,
		Requires: "a connection reset (ECONNRESET on a read, EPIPE on a write) ends that client " +
			"only: the server stays up, the others still hear each other, a newcomer is served",
		Run: checkReset},
	{Name: "whole-lines", Stages: []int{4}, Title: "two long lines sent at once arrive whole", Required: true,
		Requires: "the server relays lines, not reads: two clients' long lines sent at the same " +
			"time reach every receiver whole, and a line one client has not finished never runs " +
			"into another's",
		Ours: "3000-byte lines, each in one write, since the article's server loses the start " +
			"of a line that pauses for 1 ms (stage 5's framing asks for that); the unfinished " +
			"line is never ended",
		Run: checkWholeLinesAtOnce},
	{Name: "whole-lines", Stages: []int{5}, Title: "two long lines sent at once arrive whole", Required: true,
		Requires: "the server relays lines, not reads: two clients' long lines, each in several " +
			"writes at the same time, reach every receiver whole, never mixed, however long " +
			"a line takes to arrive",
		Ours: "6000-byte lines in four writes 30 ms apart, the two senders taking turns",
		Run:  checkWholeLines},
	{Name: "not-text", Stages: []int{4, 5}, Title: "bytes that are not text: the others still served", Required: true,
		Requires: "invalid UTF-8 and control bytes in a line do not end the server or stop it " +
			"serving the others",
		Ours: "ours relay the bytes as they came; dropping the line or its sender is allowed too",
		Run:  checkNotText},
	{Name: "idle-cpu", Stages: []int{3, 4}, Title: "CPU used with nobody talking", Required: false,
		Ours: "stages 3 and 4 poll and burn a core, which is their lesson; stage 5 sleeps",
		Run:  observeIdleCPU},
	{Name: "idle-cpu", Stages: []int{5}, Title: "under 2% of a core with 50 idle clients", Required: true,
		Requires: "the server sleeps in select (or poll, epoll, kqueue) until a socket is ready",
		Ours:     "the 2% bound is ours: a server that sleeps uses about none", Run: checkIdleCPU},
	{Name: "framing", Stages: []int{5}, Title: "two lines in one write, one line in two writes", Required: true,
		Requires: "every complete line of every read is relayed, and an unfinished line waits for its end",
		Run:      checkFraming},
	{Name: "catch-up", Stages: []int{5}, Title: "a reader 1 MB behind gets every line once it reads", Required: true,
		Requires: "what a socket did not take is kept and sent when it is writable again; the " +
			"server sleeps again once it is sent",
		Ours: "two senders share the flood, each write ending mid-line; from stage 6 on, more, " +
			"each within a flood-control burst (ours allow 256 KiB at once)",
		Run: checkCatchUp},
	{Name: "stalled", Stages: []int{5}, Title: "a client that stops reading does not stop the others", Required: true,
		Requires: "no write waits for one client: a client that does not read holds up nobody " +
			"(it may be dropped)",
		Ours: "two senders share the 6 MB, each write ending mid-line; from stage 6 on, more, " +
			"each within a flood-control burst; ours drop a client 4 MiB behind",
		Run: checkStalled},
	// Stage 6 is the stage 5 relay made fit for a room nobody vouches for. Its checks judge
	// what a client can see of that: the basics still hold, one client's flood does not bury
	// the others, a server whose own output is not read still relays, and a stop delivers
	// what was queued. How a server does each (a token bucket, a log goroutine, a second's
	// grace) is its own affair.
	{Name: "flood", Stages: []int{6}, Title: "one client floods: slow readers still hear the others", Required: true,
		Requires: "one client's flood does not bury the others: while it sends as fast as it " +
			"can, readers that take 256 KB/s each stay connected and hear another client's " +
			"line within 2 s; the flooder may be slowed down or dropped",
		Ours: "a token bucket per client (a 256 KiB burst, then 64 KiB/s): a client over its " +
			"budget is read no faster than that, and told so once",
		Run: checkFlood},
	{Name: "paused-output", Stages: []int{6}, Title: "its output not read, the server still relays", Required: true,
		Requires: "the relay never waits for the server's own output: with its standard output " +
			"not read (a terminal paused with Ctrl-S, a pipe nobody reads), 1 MB of messages " +
			"are still relayed, and the server goes on once its output is read again",
		Ours: "our log is written by a goroutine of its own from a backlog of up to 1 MiB, and " +
			"lines past that are dropped and counted; several senders share the 1 MB so that " +
			"each stays within a flood-control burst (ours allow 256 KiB at once)",
		Run: checkPausedOutput},
	{Name: "shutdown", Stages: []int{6}, Title: "SIGTERM: what was queued still arrives, then it ends", Required: true,
		Requires: "on SIGTERM, every line queued for a client before the signal still reaches " +
			"it, then its connection ends, and the server is gone within 5 s",
		Ours: "ours stop accepting and reading, give queued output up to 1 s to go out, then " +
			"close and exit with status 0 (the status is only reported); several senders share " +
			"the 4 MB so that each stays within a flood-control burst",
		Run: checkShutdown},
	// Stage 7 is Protohackers' Budget Chat (problem 3), judged by its statement's MUST and
	// MAY: the texts of the prompt, the presence list, arrivals and departures are the
	// server's own, as long as an event starts with "*" and names the users it is about; a
	// message is relayed exactly as "[NAME] message". Our stage's texts are examples, not the
	// expected bytes.
	{Name: "prompt", Stages: []int{7}, Title: "a line asking for a name as soon as a client connects", Required: true,
		Requires: "the server sends a line prompting for a name when a client connects; its text is its own",
		Ours:     budgetTexts, Run: checkPrompt},
	{Name: "illegal-name", Stages: []int{7}, Title: "an illegal name: disconnected, and nobody told", Required: true,
		Requires: "a name that is empty or not all letters and digits ends the connection; " +
			"the server MAY say why first, and tells nobody about it",
		Ours: "ours say why (\"* Sorry, a name is 1 to 32 letters and digits.\") before closing; closing without a word passes too",
		Run:  checkIllegalName},
	{Name: "presence", Stages: []int{7}, Title: "a newcomer is told who is present; the others, who came", Required: true,
		Requires: "a newcomer gets one line starting with \"*\" naming everyone present (even " +
			"when nobody is); the others get a \"*\" line naming the newcomer; names of 16 " +
			"letters and digits are allowed",
		Ours: budgetTexts, Run: checkPresence},
	{Name: "left", Stages: []int{7}, Title: "the others are told when a user leaves", Required: true,
		Requires: "when a joined user leaves, every other joined user gets a \"*\" line naming them",
		Ours:     budgetTexts, Run: checkLeft},
	{Name: "not-joined", Stages: []int{7}, Title: "no events or messages before joining", Required: true,
		Requires: "a client that has not given its name hears nothing, and nobody hears of it",
		Run:      checkNotJoined},
	{Name: "messages", Stages: []int{7}, Title: `"[NAME] message" to every other user, not the sender`, Required: true,
		Requires: "each message goes to every other joined user as \"[NAME] message\", never " +
			"back to its sender; the line may end in \"\\n\" or \"\\r\\n\"",
		Ours: "ours end lines in \"\\n\", as the statement does", Run: checkMessages},
	{Name: "long-message", Stages: []int{7}, Title: "a 1000-character message", Required: true,
		Requires: "messages of at least 1000 characters are relayed whole", Run: checkLongMessage},
	{Name: "reset", Stages: []int{7}, Title: "a user vanishes with a reset: the room is told, newcomers join", Required: true,
		Requires: "a user whose connection is reset has left: the others are told, and the " +
			"next newcomer joins as usual, without the ghost in its list",
		Run: checkResetBudget},
	{Name: "taken-name", Stages: []int{7}, Title: "a name that is taken: refused, or both users served", Required: true,
		Requires: "duplicate names MAY be refused (a disconnect, with or without a line) or " +
			"allowed; if allowed, both users keep hearing and being heard",
		Ours: "ours refuse a taken name with a line saying so", Run: checkTakenName},
	{Name: "whole-lines", Stages: []int{7}, Title: "two long messages sent at once arrive whole", Required: true,
		Requires: "each message is relayed whole: two users' messages, each in several writes " +
			"at the same time, never mixed",
		Ours: "1000 characters each, the longest the statement asks for", Run: checkWholeBudget},
	{Name: "not-text", Stages: []int{7}, Title: "bytes that are not ASCII in a message", Required: false,
		Ours: "Budget Chat's messages are ASCII, so what to do with other bytes is the " +
			"server's choice; ours relay them as they came",
		Run: observeNotTextBudget},
	{Name: "commands", Stages: []int{7}, Title: "our additions: /msg NAME text and /who", Required: false,
		Ours: "/msg and /who are ours, not Budget Chat's", Run: observeCommands},
}

// The article's two messages, and the 10-byte pieces a server that reads 10 bytes at a time
// makes of them.
const (
	articleFirst  = "Hello, world"
	articleSecond = "Lorem ipsum dolor sit amet, consectetur adipiscing elit."
)

// articlePieces are the pieces, the last one short.
var articlePieces = []string{
	"Hello, wor", "ldLorem ip", "sum dolor ", "sit amet, ", "consectetu", "r adipisci", "ng elit.",
}

// endsWith matches a log line that ends with message ("Server: received from client: Hello").
func endsWith(message string) func(string) bool {
	return func(line string) bool { return strings.HasSuffix(line, message) }
}

// waitLog waits for a log line ending with message, and fails with hint if none comes.
func (r *Run) waitLog(message, hint string) {
	if _, ok := r.WaitLog(Deadline, endsWith(message)); !ok {
		r.Say("no log line ending in %q within %s", message, human(Deadline))
		r.Fail(fmt.Sprintf("a log line ending in %q, such as %q", message, "Server: received from client: "+message),
			hint)
	}
}

func checkPieces(r *Run) {
	c := r.Client()
	// One write: however the server reads, its pieces are then the same as the article's.
	c.Send(articleFirst + articleSecond)
	hint := "stage 1 reads exactly 10 bytes at a time and prints each piece as it comes " +
		"(`Server: received from client: Hello, wor`): TCP is a stream of bytes, and the pieces " +
		"show that nothing in it marks where a message ends"
	last := len(articlePieces) - 1
	for _, piece := range articlePieces[:last] {
		r.waitLog(piece, hint)
	}
	// The last 8 bytes: a read of exactly 10 bytes (Nim's recv(10), Go's io.ReadFull) waits
	// for 2 more, until the client leaves; a plain read returns them at once.
	if _, ok := r.WaitLog(300*time.Millisecond, endsWith(articlePieces[last])); ok {
		r.Note("last piece", "before close")
		c.Close()
	} else {
		r.Say("the last 8 bytes did not come out within 300 ms: the read waits for 10 bytes")
		c.Close()
		r.waitLog(articlePieces[last], "when the client leaves, print the last, shorter piece too")
		r.Note("last piece", "after close")
	}
}

func checkLines(r *Run) {
	c := r.Client()
	hint := "read up to the end of each line, \"\\n\" or \"\\r\\n\", and print the line whole " +
		"(`Server: received from client: Hello, world`)"
	for _, send := range []struct{ bytes, lines string }{
		{articleFirst + "\r\n", articleFirst},
		{articleSecond + "\n", articleSecond},
		{"one\r\ntwo\n", "one\ntwo"},
	} {
		c.Send(send.bytes)
		for _, message := range strings.Split(send.lines, "\n") {
			line, ok := r.WaitLog(Deadline, func(line string) bool {
				return strings.HasSuffix(strings.TrimSuffix(line, "\r"), message)
			})
			if !ok {
				r.Say("no log line ending in %q within %s", message, human(Deadline))
				r.Fail(fmt.Sprintf("a log line ending in %q", message), hint)
			}
			if strings.HasSuffix(line, "\r") {
				r.Fail(fmt.Sprintf("a log line ending in %q, without the \"\\r\"", message),
					"the \"\\r\" of \"\\r\\n\" is still in the message: strip the whole terminator, \"\\r\\n\" as well as \"\\n\"")
			}
		}
	}
}

func checkRestart(r *Run) {
	c := r.Client()
	c.Send("before the restart\r\n")
	r.waitLog("before the restart", "print each line the client sends")
	// Stopped while the client is connected, the server's end of the connection closes
	// first, and its port waits in TIME_WAIT once the client closes too.
	r.Stop()
	c.ExpectClosed("a stopped server's connections close")
	c.Close()
	if err := r.Restart(); err != nil {
		r.Fail(fmt.Sprintf("your server to listen on port %d again at once", r.port),
			"your server could not listen on the port it had a moment ago: a connection closed "+
				"by the server waits in TIME_WAIT, and only a socket with SO_REUSEADDR set "+
				"before bind may take its port (the article's OptReuseAddr)")
	}
	again := r.Client()
	again.Send("after the restart\r\n")
	r.waitLog("after the restart", "print each line the client sends")
}

func observeSecondClient(r *Run) {
	first := r.Client()
	second := r.Client()
	second.Send("Hola, mundo\r\n")
	if _, ok := r.WaitLog(500*time.Millisecond, endsWith("Hola, mundo")); ok {
		r.Note("second client served", "yes")
		r.Observe("client-2 was served while client-1 stayed connected: your server is " +
			"already doing stage 3's work.")
		return
	}
	r.Say("no log line for client-2 within 500 ms")
	first.Send("Foo\r\n")
	r.waitLog("Foo", "print each line the client sends")
	r.Note("second client served", "no")
	r.Observe("client-2 connected (the kernel queued it) but was never served while client-1 " +
		"stayed: one blocking loop serves one client. Stage 3 fixes this.")
}

// greeting is what each client says in turn in the checks of several clients.
var greeting = []string{"Hello\r\n", "Hola\n", "Foo\r\n"}

func checkClients(r *Run) {
	greetLogged(r, "every client must be read: accept new clients and read from all of them "+
		"in one loop, with non-blocking sockets, so that no call waits for one client")
}

// greetLogged connects three clients, each of which says its greeting and waits for the
// server's log to print it.
func greetLogged(r *Run, hint string) []*Client {
	clients := []*Client{r.Client(), r.Client(), r.Client()}
	for i, c := range clients {
		c.Send(greeting[i])
		r.waitLog(strings.TrimRight(greeting[i], "\r\n"), hint)
	}
	return clients
}

func checkLeaveLog(r *Run) {
	clients := greetLogged(r, "print each line the client sends")
	clients[1].Close()
	line, ok := r.WaitLog(2*time.Second, func(line string) bool {
		lower := strings.ToLower(line)
		return strings.HasSuffix(strings.TrimRight(line, " \r"), "received from client:") ||
			strings.Contains(lower, "disconnect") || strings.Contains(lower, "left") || strings.Contains(lower, "closed")
	})
	switch {
	case !ok:
		r.Observe("Your server printed no line saying that client-2 left (ours print " +
			"`Server: client disconnected`); it is not required.")
	case strings.Contains(line, "received from client:") && !strings.Contains(strings.ToLower(line), "disconnect"):
		r.Note("empty message", "yes")
		r.Observe("When client-2 left, your server printed an empty message (%q) before going "+
			"on: a read of 0 bytes means the client left, not that it sent nothing (the "+
			"article's listing misses a `continue` there). It is not required.", line)
	}
	clients[0].Send("Bar\r\n")
	r.waitLog("Bar", "after a client leaves, keep reading the others: a read of 0 bytes "+
		"means that client closed its connection; drop it and go on")
	clients[2].Send("Baz\r\n")
	r.waitLog("Baz", "after a client leaves, keep reading the others")
}

// resetHint is the lesson of a client that vanished with a reset.
const resetHint = "a connection reset (ECONNRESET on a read, EPIPE or SIGPIPE on a write) " +
	"is one more way for a client to leave: drop that client and go on serving the others; " +
	"never let the error end the server (in C, ignore SIGPIPE or send with MSG_NOSIGNAL; in " +
	"Node, handle each socket's 'error' event; in Python, catch ConnectionResetError)"

func checkResetLog(r *Run) {
	clients := greetLogged(r, "print each line the client sends")
	clients[1].Reset()
	clients[0].Send("Bar\r\n")
	r.waitLog("Bar", resetHint)
	clients[2].Send("Baz\r\n")
	r.waitLog("Baz", resetHint)
	newcomer := r.Client()
	newcomer.Send("Qux\r\n")
	r.waitLog("Qux", "after a client vanished, keep accepting newcomers: "+resetHint)
}

func observeIdleCPU(r *Run) {
	// Measured twice, since one reading can hide the waste: the article's stage 3 waits up to
	// 1 ms for each client's line (recvLine(timeout = 1)), which sleeps while someone is
	// connected, and with nobody connected it spins on accept and burns a core.
	r.DropProbe()
	alone := r.CPU(500 * time.Millisecond)
	r.result.Values["cpu alone"] = alone
	r.Client()
	use := r.CPU(500 * time.Millisecond)
	next := "Stage 5 fixes this: it sleeps in select until a socket is ready."
	const burns = 0.25
	switch {
	case alone >= burns && use >= burns:
		r.Observe("Your server used %.0f%% of a core with no client and %.0f%% with one client "+
			"connected and nobody talking: a loop that asks every socket again and again burns "+
			"a core. That is this stage's lesson. %s", alone*100, use*100, next)
	case alone >= burns:
		r.Observe("Your server used %.0f%% of a core with no client, and %.0f%% with one client "+
			"connected and nobody talking: its loop burns a core while nobody is connected; "+
			"a wait for each client (a read with a timeout, as the article's recvLine(timeout "+
			"= 1)) hides the waste only while someone is. That is this stage's lesson. %s",
			alone*100, use*100, next)
	case use >= burns:
		r.Observe("Your server used %.0f%% of a core with no client, but %.0f%% with one client "+
			"connected and nobody talking: its loop burns a core once someone is connected. "+
			"That is this stage's lesson. %s", alone*100, use*100, next)
	default:
		r.Observe("Your server used %.0f%% of a core with no client and %.0f%% with one client "+
			"connected and nobody talking: it already sleeps until there is work, as stage 5 "+
			"does.", alone*100, use*100)
	}
}

// echoHint is the lesson of a line that came back to its sender.
const echoHint = "the line came back to its sender: skip the sender when you broadcast"

// isLine reports whether got is the line want, ended by "\n" or "\r\n": from stage 2 on,
// either ending is a line.
func isLine(got, want string) bool { return got == want+"\n" || got == want+"\r\n" }

// expectRelayed reads the line message (without its ending) that a client should have been
// sent, and notes which ending it came with.
func expectRelayed(c *Client, message string) {
	got, err := c.readRelayed(Deadline, true)
	if err == nil && got.Message == message {
		if strings.HasSuffix(got.Line, "\r\n") {
			c.run.Note("ending", `\r\n`)
		} else {
			c.run.Note("ending", `\n`)
		}
		return
	}
	hint := "send each line to every client except its sender"
	switch {
	case err != nil:
		hint = fmt.Sprintf("%s heard nothing: %s", c.Name, hint)
	case got.Message != "" && c.sent[got.Message]:
		c.run.Fail(fmt.Sprintf("%s to receive %s, not its own line", c.Name, quote(message)), echoHint)
	case got.Message == "":
		hint = "the line came cut, or run into another: " + hint + ", whole"
	}
	c.run.Fail(fmt.Sprintf("%s to receive %s, ended by \"\\n\" or \"\\r\\n\"", c.Name, quote(message)), hint)
}

// noteEnding turns the ending the relayed lines came with into the note of a passing check.
func noteEnding(r *Run) {
	if r.result.Notes["ending"] == `\n` {
		r.Observe(`Your server ends relayed lines in "\n" (ours send "\r\n", as the article's do); either is a line.`)
	}
}

func checkBroadcast(r *Run) {
	clients := []*Client{r.Client(), r.Client(), r.Client()}
	clients[0].Send("Hello\r\n")
	expectRelayed(clients[1], "Hello")
	expectRelayed(clients[2], "Hello")
	clients[0].ExpectNothing(300*time.Millisecond, echoHint)

	clients[1].Send("Hola\n")
	expectRelayed(clients[0], "Hola")
	expectRelayed(clients[2], "Hola")
	clients[1].ExpectNothing(100*time.Millisecond, echoHint)
	noteEnding(r)
}

// threeTalking connects three clients, the third of which says it is leaving and is heard.
func threeTalking(r *Run) []*Client {
	clients := []*Client{r.Client(), r.Client(), r.Client()}
	clients[2].Send("I am leaving\r\n")
	expectRelayed(clients[0], "I am leaving")
	expectRelayed(clients[1], "I am leaving")
	return clients
}

func checkLeave(r *Run) {
	clients := threeTalking(r)
	clients[2].Close()
	left := "after client-3 left: a client that left is removed, and a write to it that fails " +
		"(EPIPE, or SIGPIPE in C) must not stop the broadcast to the others"
	stillHeard(r, clients[0], clients[1], left)
}

// stillHeard has two clients talk to each other, failing with hint if one is not heard.
func stillHeard(r *Run, a, b *Client, hint string) {
	for _, turn := range []struct{ from, to *Client }{{a, b}, {b, a}} {
		message := "still here? says " + turn.from.Name
		turn.from.Send(message + "\r\n")
		got, err := turn.to.ReadOthers(Deadline, true)
		switch {
		case err != nil:
			r.Fail(fmt.Sprintf("%s to receive %q", turn.to.Name, message), turn.to.Name+" heard nothing "+hint)
		case got.Message != message:
			r.Fail(fmt.Sprintf("%s to receive %q", turn.to.Name, message), turn.to.Name+" heard something else "+hint)
		}
	}
}

func checkReset(r *Run) {
	clients := threeTalking(r)
	clients[2].Reset()
	stillHeard(r, clients[0], clients[1], "after client-3 vanished: "+resetHint)
	welcome(r, clients[0], clients[1], "after a client vanished, a newcomer is served like anyone: "+resetHint)
}

// welcome connects a newcomer and has it heard by a and hear a, b hearing a too. The newcomer
// speaks first: once its line is relayed, the server is reading it, so it has joined (a
// server with a thread per client adds the client in that thread, a moment after accepting).
func welcome(r *Run, a, b *Client, hint string) {
	newcomer := r.Client()
	hello := "hello, I am " + newcomer.Name
	newcomer.Send(hello + "\n")
	// Lines relayed earlier by other threads of a server may still come first: a few are
	// passed over.
	if skipTo(a, hello, 3) == "" {
		r.Fail(fmt.Sprintf("%s to receive %q", a.Name, hello), hint)
	}
	message := "welcome, " + newcomer.Name
	a.Send(message + "\n")
	for _, c := range []*Client{b, newcomer} {
		if skipTo(c, message, 3) == "" {
			r.Fail(fmt.Sprintf("%s to receive %q", c.Name, message), hint)
		}
	}
}

// Whole lines: two clients take turns writing pieces of one long line each, a moment apart, so
// that a relay that passes on what each read returns, instead of whole lines, mixes them.
const (
	wholeRounds = 3
	wholePieces = 4
	// wholeGap is the pause between two writes: long enough for a server to read each piece
	// on its own, as it would over a real network, where a long line comes in several
	// segments.
	wholeGap = 30 * time.Millisecond
)

// longLine is the line client sends in round: size bytes, its name and round first.
func longLine(client string, round, size int) string {
	head := fmt.Sprintf("%s round %d ", client, round)
	return head + strings.Repeat(string(rune('a'+round%26)), size-len(head))
}

// sendInTurns writes a and b in wholePieces pieces each, taking turns, the last piece of
// each with its "\n".
func sendInTurns(a, b *Client, lineA, lineB string) {
	cut := func(line string, i int) string {
		size := (len(line) + wholePieces - 1) / wholePieces
		return line[min(i*size, len(line)):min((i+1)*size, len(line))]
	}
	a.remember(lineA)
	b.remember(lineB)
	for i := 0; i < wholePieces; i++ {
		for _, w := range []struct {
			c    *Client
			line string
		}{{a, lineA}, {b, lineB}} {
			piece := cut(w.line, i)
			if i == wholePieces-1 {
				piece += "\n"
			}
			w.c.write(piece)
			if i < wholePieces-1 || w.c == a {
				time.Sleep(wholeGap)
			}
		}
	}
}

// expectWhole reads len(want) lines at c, in any order, each of which must be one of want
// whole, and fails with hint if one is not.
func expectWhole(r *Run, c *Client, want map[string]bool, hint string) {
	if what := readWhole(c, want); what != "" {
		r.Say("%s", what)
		r.Fail(fmt.Sprintf("%s to receive each long line whole", c.Name), hint)
	}
}

// mixedWhere says where a received line stops being the line it started as.
func mixedWhere(got string, want map[string]bool) string {
	best, at := "", -1
	for line := range want {
		n := 0
		for n < len(got) && n < len(line) && got[n] == line[n] {
			n++
		}
		if n > at {
			best, at = line, n
		}
	}
	if at <= 0 {
		return fmt.Sprintf("that line starts as no line sent did (%s): the start of a line was lost, or lines were mixed", quote(got[:min(len(got), 20)]))
	}
	if at == len(got) && len(got) < len(best) {
		return fmt.Sprintf("the line stops after %d of its %d bytes: it was cut", len(got), len(best))
	}
	if at == len(best) && len(got) > len(best) {
		return fmt.Sprintf("the line was %d bytes long, not %d: another line's bytes run on from byte %d", len(got), len(best), at)
	}
	return fmt.Sprintf("the line matches %s for its first %d bytes, then goes on with %s", quote(best[:min(len(best), 20)]), at, quote(got[at:min(len(got), at+20)]))
}

const wholeHint = "two clients' lines came mixed, or cut: relay whole lines, not whatever " +
	"each read returns. Keep each client's bytes until its \"\\n\" arrives, however long " +
	"that takes, and send the line to the others in one piece"

func checkWholeLines(r *Run) {
	a, b, c := r.Client(), r.Client(), r.Client()
	wholeLinesBetween(r, a, b, c, 6000, "", "")
}

// wholeLinesBetween runs the rounds of whole-lines between senders a and b and a third client
// c; tagA and tagB are what a relayed line of each starts with.
func wholeLinesBetween(r *Run, a, b, c *Client, size int, tagA, tagB string) {
	r.Say("%s and %s each send a %d-byte line in %d writes, taking turns; %d times",
		a.Name, b.Name, size, wholePieces, wholeRounds)
	for round := 0; round < wholeRounds; round++ {
		lineA, lineB := longLine(a.Name, round, size), longLine(b.Name, round, size)
		sendInTurns(a, b, lineA, lineB)
		expectWhole(r, c, map[string]bool{tagA + lineA: true, tagB + lineB: true}, wholeHint)
		expectWhole(r, a, map[string]bool{tagB + lineB: true}, wholeHint)
		expectWhole(r, b, map[string]bool{tagA + lineA: true}, wholeHint)
	}
	r.Say("every line arrived whole, %d rounds", wholeRounds)
}

// NotTextLine is a line that is not text: invalid UTF-8, a NUL, control bytes and an escape
// sequence that would clear a terminal.
const NotTextLine = "caf\xe9 \xff\xfe\x00\x01\x07 \x1b[2J bytes\n"

const notTextHint = "a line that is not text (invalid UTF-8, control bytes) must not stop " +
	"your server serving the others: relay the bytes as they came, or drop that " +
	"line; a decoder that raises on invalid UTF-8 (Python's bytes.decode(), say) needs its " +
	"error caught, or decode with errors=\"replace\""

func checkNotText(r *Run) {
	clients := []*Client{r.Client(), r.Client(), r.Client()}
	clients[0].Send(NotTextLine)
	// The line may be relayed, changed or dropped: what matters is what comes after it.
	clients[1].Send("still here?\n")
	got := skipTo(clients[2], "still here?", 2)
	if got == "" {
		r.Fail(fmt.Sprintf("%s to receive %q", clients[2].Name, "still here?"), notTextHint)
	}
	clients[2].Send("and you?\n")
	if skipTo(clients[1], "and you?", 2) == "" {
		r.Fail(fmt.Sprintf("%s to receive %q", clients[1].Name, "and you?"), notTextHint)
	}
	welcome(r, clients[1], clients[2], notTextHint)
}

// skipTo reads lines at c until one is want (ended by "\n" or "\r\n"), passing over at most
// skip others first; it returns that line, or "" if it did not come.
func skipTo(c *Client, want string, skip int) string {
	for range skip + 1 {
		got, err := c.ReadOthers(Deadline, true)
		if err != nil {
			return ""
		}
		if got.Message == want {
			return got.Line
		}
	}
	return ""
}

func checkIdleCPU(r *Run) {
	clients := r.Clients(50)
	// One line through the room first, so that the server has done its work of greeting
	// and relaying; whether it arrives is the broadcast check's lesson, not this one's.
	clients[49].Send("are you all there?\r\n")
	if got, err := clients[0].readRelayed(Deadline, true); err != nil || got.Message != "are you all there?" {
		r.Say("%s did not receive the line; the CPU is measured all the same", clients[0].Name)
	}
	// A client that left: stage 3's loop would spin on a socket that reads 0 bytes forever.
	leaver := r.Client()
	leaver.Close()
	use := r.idleCPU()
	if use >= 0.02 {
		r.Fail("under 2% of a core with 50 clients connected and nobody talking",
			fmt.Sprintf("your server used %.0f%% of a core with nobody talking: are you waiting "+
				"with a zero timeout? Sleep in select (or poll, epoll, kqueue) with no timeout, "+
				"and ask about writable sockets only while output waits for them", use*100))
	}
}

func checkFraming(r *Run) {
	sender, receiver := r.Client(), r.Client()
	sender.Send("first\r\nsecond\n")
	expectRelayed(receiver, "first")
	// The second line came in the same write as the first, which has arrived: it is due now.
	got, err := receiver.readRelayed(time.Second, true)
	if err != nil || got.Message != "second" {
		r.Fail(fmt.Sprintf("%s to receive %q", receiver.Name, "second"),
			"only the first of two lines sent in one write came through: keep everything a read "+
				"returns and relay every complete line in it (the article's last listing lost the rest)")
	}
	sender.Send("a line in ")
	receiver.ExpectNothing(200*time.Millisecond,
		"half a line was relayed as if it were a line: keep the bytes after the last \"\\n\" "+
			"until the rest of the line arrives")
	sender.Send("two writes\r\n")
	got, err = receiver.readRelayed(Deadline, true)
	if err != nil || got.Message != "a line in two writes" {
		r.Fail(fmt.Sprintf("%s to receive %q", receiver.Name, "a line in two writes"),
			"a line that came in two writes was lost or cut: keep the unfinished end of each "+
				"client's input until the rest of its line arrives")
	}
}

// idleCPU is the CPU a server that should be idle uses: over half a second, and if that was
// 2% of a core or more, the less of it and of another half second. A runtime that tidies up
// after the work just done (a garbage collector, a JIT compiler) does so once; a loop that
// never sleeps spins through both.
func (r *Run) idleCPU() float64 {
	use := r.CPU(500 * time.Millisecond)
	if use >= 0.02 {
		use = min(use, r.CPU(500*time.Millisecond))
	}
	return use
}

// SenderLines is how many lines each sender of a flood sends: 250,000 bytes, within the
// 262,144 bytes (256 KiB) that flood control lets a client send at once. A flood of
// megabytes is shared by several senders, so that a server with flood control relays it at
// once, as one without does: the lesson judged is the relay's, not the flood control's.
const SenderLines = 2_500

// linesPerSender is how many of a flood's count lines each sender sends. Up to stage 5, where
// flood control is not yet a lesson, two senders share them, and the server relays each line
// to three or four clients rather than to a dozen senders as well; from stage 6 on,
// SenderLines each.
func (r *Run) linesPerSender(count int) int {
	if r.stage < 6 {
		return (count + 1) / 2
	}
	return SenderLines
}

// floodSenders is how many senders share a flood of count lines.
func (r *Run) floodSenders(count int) int {
	per := r.linesPerSender(count)
	return (count + per - 1) / per
}

// flood has senders send count numbered lines between them, linesPerSender each, in order of
// sender, never more than a megabyte ahead of what the reader has counted in received.
func flood(r *Run, senders []*Client, count int, received *atomic.Int64) <-chan error {
	per := r.linesPerSender(count)
	r.Say("%s to %s send %d numbered lines (%.0f MB), %d each",
		senders[0].Name, senders[len(senders)-1].Name, count, float64(count)*100/1e6, per)
	for _, c := range senders {
		c.Drain() // each sender hears the others' lines
	}
	floods := make([]Flood, len(senders))
	var sent atomic.Int64
	turns := NewTurns(len(senders))
	for s, c := range senders {
		floods[s] = Flood{Conn: c.Conn, Line: FloodLine, First: s * per, Count: min(per, count-s*per),
			CutShort: 37, Turns: turns, Me: s, Sent: &sent, Read: received, Ahead: 10_000}
	}
	return Floods(floods)
}

// lostHint is the lesson of a flood line that is missing or cut.
const lostHint = "lines were lost or cut: relay every complete line of every read (not just " +
	"the first), and keep what a write did not take to send it later"

// heldUpHint is the lesson of a healthy reader that stops getting lines while another client
// does not read: the article's last listing wrote to each client straight from its loop.
const heldUpHint = "a client that does not read held up the others: never wait for one " +
	"client's socket to take a write; keep its output in a buffer, send it when the socket is " +
	"writable (and drop the client if too much waits)"

// receiveFlood reads count flood lines, each within wait, sent by senders that each sent
// linesPerSender of them (numbered s*linesPerSender on), and fails at the first that is
// missing, cut or out of its sender's order, showing it and what came instead: with lost as
// the hint, or with late if nothing came in time. Up to stage 5 a line may come with a prefix
// of the server's, and lines of the server's own are passed over (see style.go).
func receiveFlood(c *Client, count int, received *atomic.Int64, wait time.Duration, late, lost string) {
	r := c.run
	per := r.linesPerSender(count)
	next := make([]int, r.floodSenders(count))
	for s := range next {
		next[s] = s * per
	}
	// due names the lines each sender still owes, for a failure.
	due := func() string {
		var lines []string
		for s, n := range next {
			if n < min((s+1)*per, count) && len(lines) < 2 {
				lines = append(lines, fmt.Sprintf("line %07d", n))
			}
		}
		return strings.Join(lines, " and ")
	}
	own := 0
	for i := 0; i < count; {
		line, err := c.readLine(wait, false)
		text := trimEnding(line)
		n, prefix := r.floodNumber(text)
		if err == nil && n < 0 && r.styled() && !r.looksFlood(text) && own < maxStyleLines {
			r.noteOwn(text)
			own++
			continue
		}
		s := n / per
		if err != nil {
			r.say("[%s] had received %d of %d lines; due next: %s", c.Name, i, count, due())
			r.Fail(fmt.Sprintf("%s to receive every line of every sender, in each one's order", c.Name), late)
		}
		if n < 0 || s >= len(next) || n != next[s] {
			r.say("[%s] received %s", c.Name, quote(line))
			switch {
			case n < 0 || s >= len(next):
				r.say("[%s] that is not one whole line of the flood: cut, or run into another; due next: %s", c.Name, due())
			case n > next[s]:
				r.say("[%s] line %07d of that sender was due before it: lost", c.Name, next[s])
			default:
				r.say("[%s] that line came before, or out of its sender's order", c.Name)
			}
			r.say("[%s] had received %d lines before it, whole and in order", c.Name, i)
			r.Fail(fmt.Sprintf("%s to receive every line of every sender, in each one's order", c.Name), lost)
		}
		r.notePrefix(prefix, text)
		next[s]++
		i++
		received.Store(int64(i))
	}
	r.say("[%s] received all %d lines, whole and in order", c.Name, count)
}

// floodLength is the length of a flood line without its ending.
var floodLength = len(trimEnding(FloodLine(0)))

// floodNumber is the number of the flood line that text relays whole, and the prefix the
// server put in front of it (none from stage 6 on); -1 if it relays none.
func (r *Run) floodNumber(text string) (int, string) {
	if len(text) < floodLength {
		return -1, ""
	}
	prefix, line := text[:len(text)-floodLength], text[len(text)-floodLength:]
	sender, n, ok := ParseNumbered(line)
	if !ok || sender >= 0 {
		return -1, ""
	}
	if prefix != "" && (!r.styled() || r.looksFlood(prefix)) {
		return -1, ""
	}
	return n, prefix
}

// looksFlood reports whether text holds a piece of a flood line.
func (r *Run) looksFlood(text string) bool {
	return strings.Contains(text, "---") || strings.Contains(text, "line 0")
}

// floodPast has senders send count numbered lines, and proves that healthy receives every
// one, whole and in order, whatever another client (or the server's own output) does
// meanwhile. held is the hint if healthy waits in vain or the senders cannot send, "" for
// the usual ones.
func floodPast(r *Run, senders []*Client, healthy *Client, count int, held string) {
	unsent := "keep reading every client while you write to the others"
	if held == "" {
		held = heldUpHint
	} else {
		unsent = held
	}
	var received atomic.Int64
	sent := flood(r, senders, count, &received)
	receiveFlood(healthy, count, &received, 5*time.Second, held, lostHint)
	if err := <-sent; err != nil {
		r.Say("the senders could not send: %v", err)
		r.Fail("every sender to send every line", unsent)
	}
}

// CatchUpLines is how many lines the catch-up check sends: 4 MB, about 1 MB more than the
// kernel holds for a client that does not read (a 4 KiB receive buffer, and the server's
// send buffer, which Linux grows up to about 3 MB on loopback), and under 4 MiB, the limit
// past which our stage 5 drops a client.
const CatchUpLines = 40_000

func checkCatchUp(r *Run) {
	healthy, late := r.Client(), r.SlowClient()
	senders := r.Clients(r.floodSenders(CatchUpLines))
	r.Say("%s does not read until %s has received everything", late.Name, healthy.Name)
	// Whether the server sleeps before the flood: if it spins already, that is the idle-cpu
	// check's lesson, and it is not measured again after the flood.
	// The bound is well above what a server that sleeps uses, and well below what one that
	// spins does, even on a machine so busy that it gets a fifth of a core.
	spins := ProcReadable && r.CPU(300*time.Millisecond) >= 0.05
	r.HideOutput()
	defer r.ShowOutput()
	floodPast(r, senders, healthy, CatchUpLines, "")
	r.Say("%s reads now", late.Name)
	behind := "a client that fell behind lost lines: when a write takes only part of what you " +
		"give it (or none: EAGAIN), keep the rest for that client and send it when its socket " +
		"is writable again"
	receiveFlood(late, CatchUpLines, new(atomic.Int64), 5*time.Second, behind, behind)
	if ProcReadable && !spins {
		// A socket with room in its send buffer is always writable: a server that goes on
		// asking about it once the output is sent wakes at once, forever.
		if use := r.idleCPU(); use >= 0.02 {
			r.Fail(fmt.Sprintf("under 2%% of a core once %s has caught up", late.Name),
				fmt.Sprintf("your server used %.0f%% of a core after %s caught up, with nobody "+
					"talking: stop asking about a writable socket once its output is all sent", use*100, late.Name))
		}
	}
}

// StalledLines is how many lines the stalled-reader check sends: 6 MB, twice what the kernel
// holds for a client that does not read, so that a server that waits for that client stops.
const StalledLines = 60_000

func checkStalled(r *Run) {
	healthy, stalled := r.Client(), r.SlowClient()
	senders := r.Clients(r.floodSenders(StalledLines))
	r.Say("%s never reads; it may be dropped", stalled.Name)
	r.HideOutput()
	defer r.ShowOutput()
	floodPast(r, senders, healthy, StalledLines, "")
	healthy.ExpectNothing(100*time.Millisecond, "every line was to arrive once")
}

// Whole lines at stage 4. The article's stage 4 server reads each line with a timeout of
// 1 ms, counted over every wait for more of the line, and reads 4000 bytes at a time: it loses
// the start of a line that stops coming for about 1 ms, and the first 4000 bytes of a longer
// line whenever its first wait happened to end near the 1 ms. It is not wrong for its stage,
// whose lesson is who gets each line (stage 5's framing asks for the rest), so the lines here
// never pause and are shorter than one of its reads. Two kinds of rounds:
//
//   - Two senders each write a 3000-byte line (longer than many servers read at once) in one
//     write, both at the same moment, and every receiver must get both whole. A relay that
//     passes on its reads mixes these lines only when it happens to read one sender between
//     two reads of the other, so these rounds prove the lines whole rather than catch such a
//     relay.
//   - Catching it for certain: one sender writes the start of a line and stops there; a moment
//     later another sends a whole line. A relay of reads has already passed the unfinished
//     start on, and the other line runs on from it. A server that relays lines holds the start
//     (or, like the article's, lets it go), and the other line comes whole. The unfinished line
//     is never ended, so how a server treats a line that comes slowly is not judged here.
const (
	atOnceRounds = 3
	atOnceSize   = 3000
	// unfinishedWait is how long the start of a line is left alone before the other line
	// comes: ample for a relay to pass on what it read.
	unfinishedWait = 200 * time.Millisecond
)

func checkWholeLinesAtOnce(r *Run) {
	a, b, c := r.Client(), r.Client(), r.Client()
	r.Say("%s and %s each send a %d-byte line in one write, both at once; %d times",
		a.Name, b.Name, atOnceSize, atOnceRounds)
	for round := range atOnceRounds {
		lineA, lineB := longLine(a.Name, round, atOnceSize), longLine(b.Name, round+13, atOnceSize)
		a.remember(lineA)
		b.remember(lineB)
		// Every client reads while the lines are sent: a server that writes a whole line to
		// one receiver before it reads on must not be kept waiting by the tester.
		reads := []struct {
			c    *Client
			want map[string]bool
		}{{c, map[string]bool{lineA: true, lineB: true}}, {a, map[string]bool{lineB: true}}, {b, map[string]bool{lineA: true}}}
		wrong := make([]string, len(reads))
		var readers, senders sync.WaitGroup
		for i, read := range reads {
			readers.Add(1)
			go func() {
				defer readers.Done()
				wrong[i] = readWhole(read.c, read.want)
			}()
		}
		sendErr := make([]error, 2)
		start := make(chan struct{})
		for i, sender := range []*Client{a, b} {
			line := []string{lineA, lineB}[i] + "\n"
			r.say("[%s] sends %s", sender.Name, quote(line))
			senders.Add(1)
			go func() {
				defer senders.Done()
				<-start
				sender.Conn.SetWriteDeadline(time.Now().Add(Deadline))
				_, sendErr[i] = io.WriteString(sender.Conn, line)
			}()
		}
		close(start)
		senders.Wait()
		readers.Wait()
		for i, err := range sendErr {
			if err != nil {
				sender := []*Client{a, b}[i]
				r.say("[%s] cannot send: %v", sender.Name, reasonOf(err))
				r.Fail(fmt.Sprintf("%s to be able to send", sender.Name), "your server closed the connection of a client that was talking to it")
			}
		}
		for i, what := range wrong {
			if what != "" {
				r.Say("%s", what)
				r.Fail(fmt.Sprintf("%s to receive each long line whole", reads[i].c.Name), wholeHint)
			}
		}
	}
	r.Say("every line arrived whole, %d rounds", atOnceRounds)

	unfinished := fmt.Sprintf("%s has not finished this line ", a.Name)
	r.Say("%s starts a line and stops; %s later %s sends a whole one", a.Name, human(unfinishedWait), b.Name)
	a.Send(unfinished)
	time.Sleep(unfinishedWait)
	whole := fmt.Sprintf("%s sends a whole line", b.Name)
	b.Send(whole + "\n")
	for _, receiver := range []*Client{c, a} {
		got, err := receiver.ReadOthers(Deadline, true)
		if err != nil {
			r.Fail(fmt.Sprintf("%s to receive %q", receiver.Name, whole), wholeHint)
		}
		if got.Message == whole {
			continue
		}
		switch {
		case got.Message == unfinished:
			r.Say("%s's unfinished line came as a line of its own, ended by your server", a.Name)
		case strings.Contains(got.Text, unfinished):
			r.Say("%s's unfinished line came first, and %s's ran on from it", a.Name, b.Name)
		}
		r.Fail(fmt.Sprintf("%s to receive %q whole", receiver.Name, whole), wholeHint)
	}
}

// readWhole reads len(want) lines at c, in any order, each of which must be one of want
// whole; it says what went wrong, or "".
func readWhole(c *Client, want map[string]bool) string {
	for range len(want) {
		got, err := c.ReadOthers(Deadline, false)
		if err != nil {
			return fmt.Sprintf("%s did not receive every line", c.Name)
		}
		if !want[got.Message] {
			c.run.say("[%s] received %s", c.Name, quote(got.Line))
			return mixedWhere(c.run.unstyled(got.Text), want)
		}
		c.run.say("[%s] received %s ✓", c.Name, quote(got.Line))
		delete(want, got.Message)
	}
	return ""
}
