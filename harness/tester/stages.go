//go:build linux || darwin

package harness

import (
	"fmt"
	"net"
	"strings"
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
	6: "names and presence (Budget Chat)",
}

// StageChecks lists the checks of a stage, required ones first. Stages 1 to 3 show their
// lesson only in the server's log, so their checks read it, looking for the article's lines
// (`Server: received from client: Hello`); from stage 4 on, the checks look only at what the
// clients receive.
func StageChecks(stage int) []Check {
	switch stage {
	case 1:
		return []Check{
			{"pieces", "two messages come out as 10-byte pieces in the log", true, checkPieces},
		}
	case 2:
		return []Check{
			{"lines", `whole lines in the log, ended by "\n" or "\r\n"`, true, checkLines},
			{"restart", "a restart right after a stop with a client connected", true, checkRestart},
			{"second-client", "is a second client served?", false, observeSecondClient},
		}
	case 3:
		return []Check{
			{"clients", "several clients, every line of each in the log", true, checkClients},
			{"leave", "a client leaves: noticed, and the rest still heard", true, checkLeaveLog},
			{"idle-cpu", "CPU used with nobody talking", false, observeIdleCPU},
		}
	case 4:
		return []Check{
			{"broadcast", "every line to every other client, not its sender", true, checkBroadcast},
			{"leave", "a client leaves: the others still hear each other", true, checkLeave},
			{"idle-cpu", "CPU used with nobody talking", false, observeIdleCPU},
		}
	case 5:
		return []Check{
			{"broadcast", "every line to every other client, not its sender", true, checkBroadcast},
			{"leave", "a client leaves: the others still hear each other", true, checkLeave},
			{"idle-cpu", "under 2% of a core with 50 idle clients", true, checkIdleCPU},
			{"framing", "two lines in one write, one line in two writes", true, checkFraming},
			{"catch-up", "a reader 1 MB behind gets every line once it reads", true, checkCatchUp},
			{"stalled", "a client that stops reading does not stop the others", true, checkStalled},
		}
	case 6:
		return stage6Checks()
	}
	return nil
}

// The article's two messages, and the 10-byte pieces a server that reads 10 bytes at a time
// makes of them.
const (
	articleFirst  = "Hello, world"
	articleSecond = "Lorem ipsum dolor sit amet, consectetur adipiscing elit."
)

// ArticlePieces are the pieces, the last one short.
var ArticlePieces = []string{
	"Hello, wor", "ldLorem ip", "sum dolor ", "sit amet, ", "consectetu", "r adipisci", "ng elit.",
}

// endsWith matches a log line that ends with message ("Server: received from client: Hello").
func endsWith(message string) func(string) bool {
	return func(line string) bool { return strings.HasSuffix(line, message) }
}

// waitLog waits for a log line ending with message, and fails with hint if none comes.
func (r *CheckRun) waitLog(message, hint string) {
	if _, ok := r.WaitLog(Deadline, endsWith(message)); !ok {
		r.Say("no log line ending in %q within %s", message, human(Deadline))
		r.Fail(fmt.Sprintf("a log line ending in %q, such as %q", message, "Server: received from client: "+message),
			r.exitHint(hint))
	}
}

func checkPieces(r *CheckRun) {
	c := r.Client()
	// One write: however the server reads, its pieces are then the same as the article's.
	c.Send(articleFirst + articleSecond)
	hint := "stage 1 reads exactly 10 bytes at a time and prints each piece as it comes " +
		"(`Server: received from client: Hello, wor`): TCP is a stream of bytes, and the pieces " +
		"show that nothing in it marks where a message ends"
	last := len(ArticlePieces) - 1
	for _, piece := range ArticlePieces[:last] {
		r.waitLog(piece, hint)
	}
	// The last 8 bytes: a read of exactly 10 bytes (Nim's recv(10), Go's io.ReadFull) waits
	// for 2 more, until the client leaves; a plain read returns them at once.
	if _, ok := r.WaitLog(300*time.Millisecond, endsWith(ArticlePieces[last])); ok {
		r.Note("last piece", "before close")
		c.Close()
	} else {
		r.Say("the last 8 bytes did not come out within 300 ms: the read waits for 10 bytes")
		c.Close()
		r.waitLog(ArticlePieces[last], "when the client leaves, print the last, shorter piece too")
		r.Note("last piece", "after close")
	}
}

func checkLines(r *CheckRun) {
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
				r.Fail(fmt.Sprintf("a log line ending in %q", message), r.exitHint(hint))
			}
			if strings.HasSuffix(line, "\r") {
				r.Fail(fmt.Sprintf("a log line ending in %q, without the \"\\r\"", message),
					"the \"\\r\" of \"\\r\\n\" is still in the message: strip the whole terminator, \"\\r\\n\" as well as \"\\n\"")
			}
		}
	}
}

func checkRestart(r *CheckRun) {
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

func observeSecondClient(r *CheckRun) {
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

func checkClients(r *CheckRun) {
	clients := []*CheckClient{r.Client(), r.Client(), r.Client()}
	for i, c := range clients {
		c.Send(greeting[i])
		r.waitLog(strings.TrimRight(greeting[i], "\r\n"),
			"every client must be read: accept new clients and read from all of them in one "+
				"loop, with non-blocking sockets, so that no call waits for one client")
	}
}

func checkLeaveLog(r *CheckRun) {
	clients := []*CheckClient{r.Client(), r.Client(), r.Client()}
	for i, c := range clients {
		c.Send(greeting[i])
		r.waitLog(strings.TrimRight(greeting[i], "\r\n"), "print each line the client sends")
	}
	clients[1].Close()
	line, ok := r.WaitLog(Deadline, func(line string) bool {
		lower := strings.ToLower(line)
		return strings.HasSuffix(strings.TrimRight(line, " \r"), "received from client:") ||
			strings.Contains(lower, "disconnect") || strings.Contains(lower, "left")
	})
	switch {
	case !ok:
		r.Fail("a log line saying that client-2 left, such as \"Server: client disconnected\"",
			r.exitHint("a read of 0 bytes means the client closed its connection: print "+
				"`Server: client disconnected` and forget that client"))
	case strings.Contains(line, "received from client:"):
		r.Fail("\"Server: client disconnected\", not an empty message",
			"a read of 0 bytes means the client left, not that it sent an empty message: "+
				"remove it and go on to the next client (the article's listing misses a `continue` here)")
	}
	clients[0].Send("Bar\r\n")
	r.waitLog("Bar", "after a client leaves, keep reading the others")
	clients[2].Send("Baz\r\n")
	r.waitLog("Baz", "after a client leaves, keep reading the others")
}

func observeIdleCPU(r *CheckRun) {
	r.Client()
	use := r.CPU(time.Second)
	next := "Stage 5 fixes this: it sleeps in select until a socket is ready."
	if use >= 0.25 {
		r.Observe("Your server used %.0f%% of a core with one client connected and nobody "+
			"talking: a loop that asks every socket again and again burns a core. That is "+
			"this stage's lesson. %s", use*100, next)
		return
	}
	r.Observe("Your server used %.0f%% of a core with one client connected and nobody "+
		"talking: it already sleeps until there is work, as stage 5 does.", use*100)
}

// echoHint is the lesson of a line that came back to its sender.
const echoHint = "the line came back to its sender: skip the sender when you broadcast"

// expectRelayed reads the line a client should have been sent, with the hint that fits
// what came instead.
func expectRelayed(c *CheckClient, want string) {
	got, err := c.ReadLine(Deadline)
	if err == nil && got == want {
		return
	}
	hint := "send each line to every client except its sender"
	switch {
	case err != nil:
		hint = c.run.exitHint(fmt.Sprintf("%s heard nothing: %s", c.Name, hint))
	case strings.TrimRight(got, "\r\n") == strings.TrimRight(want, "\r\n"):
		hint = "relayed lines end in \"\\r\\n\", whatever ending they came with"
	}
	c.run.Fail(fmt.Sprintf("%s to receive %s", c.Name, quote(want)), hint)
}

func checkBroadcast(r *CheckRun) {
	clients := []*CheckClient{r.Client(), r.Client(), r.Client()}
	clients[0].Send("Hello\r\n")
	expectRelayed(clients[1], "Hello\r\n")
	expectRelayed(clients[2], "Hello\r\n")
	clients[0].ExpectNothing(300*time.Millisecond, echoHint)

	clients[1].Send("Hola\n")
	expectRelayed(clients[0], "Hola\r\n")
	expectRelayed(clients[2], "Hola\r\n")
	clients[1].ExpectNothing(100*time.Millisecond, echoHint)
}

func checkLeave(r *CheckRun) {
	clients := []*CheckClient{r.Client(), r.Client(), r.Client()}
	clients[2].Send("I am leaving\r\n")
	expectRelayed(clients[0], "I am leaving\r\n")
	expectRelayed(clients[1], "I am leaving\r\n")
	clients[2].Close()
	left := "after client-3 left: a client that left is removed, and a write to it that fails " +
		"(EPIPE, or SIGPIPE in C) must not stop the broadcast to the others"
	for _, turn := range []struct{ from, to *CheckClient }{{clients[0], clients[1]}, {clients[1], clients[0]}} {
		turn.from.Send("still here?\r\n")
		got, err := turn.to.ReadLine(Deadline)
		if err != nil || got != "still here?\r\n" {
			turn.to.run.Fail(fmt.Sprintf("%s to receive %q", turn.to.Name, "still here?\r\n"),
				r.exitHint(turn.to.Name+" heard nothing "+left))
		}
	}
}

func checkIdleCPU(r *CheckRun) {
	clients := r.Clients(50)
	clients[49].Send("are you all there?\r\n")
	expectRelayed(clients[0], "are you all there?\r\n")
	// A client that left: stage 3's loop would spin on a socket that reads 0 bytes forever.
	leaver := r.Client()
	leaver.Close()
	use := r.CPU(2 * time.Second)
	if use >= 0.02 {
		r.Fail("under 2% of a core with 50 clients connected and nobody talking",
			fmt.Sprintf("your server used %.0f%% of a core with nobody talking: are you waiting "+
				"with a zero timeout? Sleep in select (or poll, epoll, kqueue) with no timeout, "+
				"and ask about writable sockets only while output waits for them", use*100))
	}
}

func checkFraming(r *CheckRun) {
	sender, receiver := r.Client(), r.Client()
	sender.Send("first\r\nsecond\n")
	expectRelayed(receiver, "first\r\n")
	// The second line came in the same write as the first, which has arrived: it is due now.
	got, err := receiver.ReadLine(time.Second)
	if err != nil || got != "second\r\n" {
		r.Fail(fmt.Sprintf("%s to receive %q", receiver.Name, "second\r\n"),
			"only the first of two lines sent in one write came through: keep everything a read "+
				"returns and relay every complete line in it (the article's last listing lost the rest)")
	}
	sender.Send("a line in ")
	receiver.ExpectNothing(200*time.Millisecond,
		"half a line was relayed as if it were a line: keep the bytes after the last \"\\n\" "+
			"until the rest of the line arrives")
	sender.Send("two writes\r\n")
	got, err = receiver.ReadLine(Deadline)
	if err != nil || got != "a line in two writes\r\n" {
		r.Fail(fmt.Sprintf("%s to receive %q", receiver.Name, "a line in two writes\r\n"),
			"a line that came in two writes was lost or cut: keep the unfinished end of each "+
				"client's input until the rest of its line arrives")
	}
}

// FloodLine is the i-th line of a flood: 100 bytes with its terminator, numbered so that a
// lost, cut or reordered line shows.
func FloodLine(i int) string {
	return fmt.Sprintf("line %07d %s\r\n", i, strings.Repeat("-", 85))
}

// flood sends count numbered lines from its own goroutine (see sendFlood).
func flood(c *CheckClient, count int, received *atomic.Int64) <-chan error {
	c.run.say("[%s] sends %d numbered 100-byte lines (%.0f MB), at most 1 MB ahead",
		c.Name, count, float64(count)*100/1e6)
	return sendFlood(c.Conn, count, received)
}

// sendFlood sends count numbered lines on conn from its own goroutine, never more than a
// megabyte ahead of what the reader has counted in received: the client that plays a healthy
// reader reads as fast as the checker can, which may be slower than the server. The channel
// yields the write error, or nil once everything is sent.
func sendFlood(conn net.Conn, count int, received *atomic.Int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		var batch strings.Builder
		for i := 0; i < count; i++ {
			batch.WriteString(FloodLine(i))
			if batch.Len() < 64<<10 && i < count-1 {
				continue
			}
			for deadline := time.Now().Add(Deadline); int64(i)-received.Load() > 10_000; {
				if time.Now().After(deadline) {
					done <- fmt.Errorf("the reader got no line for %s", human(Deadline))
					return
				}
				time.Sleep(time.Millisecond)
			}
			conn.SetWriteDeadline(time.Now().Add(Deadline))
			if _, err := conn.Write([]byte(batch.String())); err != nil {
				done <- err
				return
			}
			batch.Reset()
		}
		done <- nil
	}()
	return done
}

// lostHint is the lesson of a flood line that is missing or cut.
const lostHint = "lines were lost or cut: relay every complete line of every read (not just " +
	"the first), and keep what a write did not take to send it later"

// heldUpHint is the lesson of a healthy reader that stops getting lines while another client
// does not read: the article's last listing wrote to each client straight from its loop.
const heldUpHint = "a client that does not read held up the others: never wait for one " +
	"client's socket to take a write; keep its output in a buffer, send it when the socket is " +
	"writable (and drop the client if too much waits)"

// receiveFlood reads count flood lines, each within wait, and fails at the first that is
// missing, cut or out of order: with lost as the hint, or with late if none came in time.
func receiveFlood(c *CheckClient, count int, received *atomic.Int64, wait time.Duration, late, lost string) {
	for i := 0; i < count; i++ {
		line, err := c.readLine(wait, false)
		if err != nil || line != FloodLine(i) {
			hint := lost
			if err == nil {
				c.run.say("[%s] received %s", c.Name, quote(line))
			} else {
				hint = c.run.exitHint(late)
			}
			c.run.say("[%s] had received lines 0 to %d, whole and in order", c.Name, i-1)
			c.run.Fail(fmt.Sprintf("%s to receive line %d: %s", c.Name, i, quote(FloodLine(i))), hint)
		}
		received.Store(int64(i + 1))
	}
	c.run.say("[%s] received all %d lines, whole and in order", c.Name, count)
}

// CatchUpLines is how many lines the catch-up check sends: 4 MB, about 1 MB more than the
// kernel holds for a client that does not read (a 4 KiB receive buffer, and the server's
// send buffer, which Linux grows up to about 3 MB on loopback), and under 4 MiB, the limit
// past which our stage 5 drops a client.
const CatchUpLines = 40_000

func checkCatchUp(r *CheckRun) {
	sender, healthy, late := r.Client(), r.Client(), r.SlowClient()
	r.Say("%s does not read until %s has received everything", late.Name, healthy.Name)
	// Whether the server sleeps before the flood: if it spins already, that is the idle-cpu
	// check's lesson, and it is not measured again after the flood.
	spins := GroupCPUMeasured && r.CPU(300*time.Millisecond) >= 0.2
	var received atomic.Int64
	r.HideOutput()
	defer r.ShowOutput()
	sent := flood(sender, CatchUpLines, &received)
	receiveFlood(healthy, CatchUpLines, &received, 5*time.Second, heldUpHint, lostHint)
	if err := <-sent; err != nil {
		r.Say("%s could not send: %v", sender.Name, err)
		r.Fail(sender.Name+" to send every line", "keep reading every client while you write to the others")
	}
	r.Say("%s reads now", late.Name)
	behind := "a client that fell behind lost lines: when a write takes only part of what you " +
		"give it (or none: EAGAIN), keep the rest for that client and send it when its socket " +
		"is writable again"
	receiveFlood(late, CatchUpLines, new(atomic.Int64), 5*time.Second, behind, behind)
	if GroupCPUMeasured && !spins {
		// A socket with room in its send buffer is always writable: a server that goes on
		// asking about it once the output is sent wakes at once, forever.
		if use := r.CPU(time.Second); use >= 0.02 {
			r.Fail(fmt.Sprintf("under 2%% of a core once %s has caught up", late.Name),
				fmt.Sprintf("your server used %.0f%% of a core after %s caught up, with nobody "+
					"talking: stop asking about a writable socket once its output is all sent", use*100, late.Name))
		}
	}
}

// StalledLines is how many lines the stalled-reader check sends: 6 MB, twice what the kernel
// holds for a client that does not read, so that a server that waits for that client stops.
const StalledLines = 60_000

func checkStalled(r *CheckRun) {
	sender, healthy, stalled := r.Client(), r.Client(), r.SlowClient()
	r.Say("%s never reads; it may be dropped", stalled.Name)
	var received atomic.Int64
	r.HideOutput()
	defer r.ShowOutput()
	sent := flood(sender, StalledLines, &received)
	receiveFlood(healthy, StalledLines, &received, 5*time.Second, heldUpHint, lostHint)
	if err := <-sent; err != nil {
		r.Say("%s could not send: %v", sender.Name, err)
		r.Fail(sender.Name+" to send every line", "keep reading every client while you write to the others")
	}
	healthy.ExpectNothing(100*time.Millisecond, "every line was to arrive once")
}
