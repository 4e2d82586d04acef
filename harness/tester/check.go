//go:build linux || darwin

package tester

// The checks that prove a stage's lesson, written once and run two ways: `go test ./harness`
// runs them against our own stages, and `go run ./harness/cmd/check` against anybody's server
// (Go, Nim, Python, C, a shell script), which is why a check sees a server only from outside:
// a command to start and stop, a port, what it prints, and how much CPU it uses.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Check is one thing checked of a server at one stage.
type Check struct {
	Name   string // short, in the output and in `go test -run`: "broadcast"
	Stages []int  // the stages whose lesson it checks
	Title  string // what it checks, in one line of the output
	// Required is true when the check fails a server that misses Requires; an observation
	// (false) reports what it saw and never fails.
	Required bool
	// Requires is what the lesson of the stage (the article's step) or, at stage 7, Budget
	// Chat's statement asks for: the only grounds on which a required check fails.
	Requires string
	// Ours is what our own stages do beyond that, which the check at most reports: a
	// server that does it otherwise is not wrong.
	Ours string
	Run  func(r *Run)
}

// Result is what one check saw.
type Result struct {
	Check  Check
	Stage  int
	Passed bool  // the check ran to its end without a failure
	Err    error // the check could not run: the server did not start, say
	// Skipped says why a check did not measure what it checks (CPU on macOS); it still passes.
	Skipped     string
	Expected    string // on failure, what should have happened
	Hint        string // on failure, the lesson that was missed
	Observation string // what an observation saw, or a note of a required check
	Killed      bool   // the server did not stop within StopGrace of SIGTERM
	// Ended says how the server ended by itself in the middle of the check ("exit status 1",
	// "signal: segmentation fault"), or "".
	Ended string
	// Buffered is set when a line the check waited for came out only when the server ended:
	// its output was held in a buffer.
	Buffered bool
	// Style says what the check saw of the server's house style (a greeting, a name in front
	// of each line), which stages 1 to 5 look past; the check command reports it once.
	Style      string
	Transcript []string
	Tail       []string           // the server's last lines, when it ended by itself
	Notes      map[string]string  // facts a test may assert: "last piece": "after close"
	Values     map[string]float64 // figures a test may assert: "cpu": 0.97
	Output     []string           // what the server printed, capped at maxOutputLines
	// failedAt is how long the transcript was when the check failed: the server's lines just
	// before it are the ones a failure shows.
	failedAt int
}

// maxOutputLines caps what is kept of a server's output per check; maxShownLines what a
// transcript keeps of it (a failure shows only an excerpt unless -v, see excerpt); tailLines
// how many of its last lines a failure shows when the server ended.
const (
	maxOutputLines = 20_000
	maxShownLines  = 1000
	tailLines      = 25
)

// Run is one run of one check: the server it started and the clients it connected. A
// client of a test (TestClient) has a Run of its own, with no server and a test to fail.
type Run struct {
	program *Program
	test    Failer // nil in a check
	stage   int
	port    int
	Addr    string // 127.0.0.1:PORT

	mu         sync.Mutex
	transcript []string
	output     Lines // what the server printed; WaitLog waits for its lines
	shown      int   // output lines put in the transcript
	stopping   bool  // the tester is stopping the server: its exit is expected
	awaited    []awaited

	probe   net.Conn
	clients []*Client
	closing sync.WaitGroup // clients saying goodbye in the background
	// connectingMany is set while Clients connects several: one line says so, and the
	// accepts are waited for once, after the last.
	connectingMany bool
	hidden         int // server lines not shown since HideOutput, or -1 when they are shown
	result         *Result

	// The lines the clients sent, and every styleWindow bytes of them, to find them in what
	// the server sends (see style.go); what was seen of the server's house style.
	sentLines, sentWindows map[string]bool
	style                  houseStyle
}

// awaited is a log line that WaitLog gave up on: if it comes out later, when the server ends,
// the server's output was held in a buffer.
type awaited struct {
	match func(string) bool
	after int // how many output lines had come when WaitLog gave up
}

// RunCheck starts the server, runs check against it, and stops the server's process group.
func RunCheck(program *Program, stage int, check Check) *Result {
	result := &Result{Check: check, Stage: stage, Notes: map[string]string{}, Values: map[string]float64{}}
	r := &Run{program: program, stage: stage, result: result, hidden: -1, output: Lines{Max: maxOutputLines}}
	if program.FixedPort() {
		r.port = DefaultPort
	} else {
		port, err := FreePort()
		if err != nil {
			result.Err = err
			return result
		}
		r.port = port
	}
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	result.Notes["port"] = strconv.Itoa(r.port)

	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := r.start(); err != nil {
			if !r.bindFailed(err) {
				result.Err = err
			}
			return
		}
		check.Run(r)
		result.Passed = true
	}()
	<-done
	r.closeClients()
	r.setStopping(true)
	if program.Stop() {
		result.Killed = true
		r.say("[tester] your server was still running %s after SIGTERM: killed it (SIGKILL)", human(StopGrace))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hidden > 0 { // a check may end with the server's lines hidden: say how many
		r.transcript = append(r.transcript, fmt.Sprintf("[your server] ... (%d lines, not shown)", r.hidden))
	}
	r.judgeBuffered()
	result.Style = r.styleSeen()
	if result.Err != nil && result.Ended == "" {
		var notReady *ErrNotReady
		if errors.As(result.Err, &notReady) && notReady.Status != "" {
			result.Ended = notReady.Status
		}
	}
	if result.Ended != "" {
		result.Tail = tail(r.output.All(), tailLines)
	}
	// Copies: a process outside the group may still hold the server's output and print.
	result.Transcript = append([]string(nil), r.transcript...)
	result.Output = r.output.All()
	return result
}

// bindFailed judges a server that ended at its start, saying that its address is in use
// while nothing listens there, as failing the lesson of stage 2 rather than as a check that
// could not run: the port is held by the connections of an earlier run waiting in TIME_WAIT,
// which is what SO_REUSEADDR is for, and exactly how the article shows a server without it
// failing. (At stage 1, which does not teach it yet, the checks could not run.)
func (r *Run) bindFailed(err error) bool {
	var notReady *ErrNotReady
	if r.stage < 2 || !errors.As(err, &notReady) || notReady.Status == "" || PortTaken(r.port) {
		return false
	}
	// The server's last lines may still be on their way when its exit is seen.
	select {
	case <-r.program.outputRead():
	case <-time.After(time.Second):
	}
	inUse := false
	for _, line := range r.output.All() {
		lower := strings.ToLower(line)
		inUse = inUse || strings.Contains(lower, "address already in use") ||
			strings.Contains(lower, "address in use") || strings.Contains(lower, "eaddrinuse")
	}
	if !inUse {
		return false
	}
	r.Say("port %d is free, but your server could not listen there", r.port)
	// Its last lines are in the transcript (whole, or the excerpt that names the error):
	// not shown a second time as those of a server that ended in the middle of a check.
	r.result.Expected = fmt.Sprintf("your server to listen on port %d, where nothing else listens", r.port)
	r.result.Hint = ReuseAddrHint
	return true
}

// ReuseAddrHint is the lesson of a server that cannot listen where nothing listens.
const ReuseAddrHint = "the port is held by connections of an earlier run waiting in TIME_WAIT " +
	"(a connection that the server closed first waits there a minute), and only a socket " +
	"with SO_REUSEADDR set before bind may take it: set it, as the article's stage 2 does " +
	"with OptReuseAddr"

// judgeBuffered looks, once the server has ended, for the log lines WaitLog gave up on; r.mu
// must be held.
func (r *Run) judgeBuffered() {
	output := r.output.All()
	for _, a := range r.awaited {
		for _, line := range output[min(a.after, len(output)):] {
			if a.match(line) {
				r.result.Buffered = true
			}
		}
	}
	if !r.result.Buffered {
		// A server that buffers what it prints into a pipe, and is stopped by SIGTERM
		// (C's default action), never writes its buffer out: nothing came at all.
		if !r.result.Passed && r.result.Err == nil && r.program.Pipe && len(output) == 0 {
			r.result.Hint = SilentHint
		}
		return
	}
	r.transcript = append(r.transcript, "[tester] the lines waited for came out only when your server ended: they were held in a buffer")
	if !r.result.Passed {
		r.result.Hint = BufferedHint
	}
}

// BufferedHint says how to make a program write each line as it prints it.
const BufferedHint = "your server's output was held in a buffer and came out only when it " +
	"ended: its runtime buffers what it prints when the output is not a terminal (you ran " +
	"the tester with -pipe, or your program buffers even on a terminal). " + bufferedAdvice

// bufferedAdvice says how, in each language.
const bufferedAdvice = "Write each line out as you print it: in C, setvbuf(stdout, NULL, _IOLBF, 0) once, or fflush(stdout); in " +
	"Nim, flushFile(stdout); in Python, print(..., flush=True), python3 -u or " +
	"PYTHONUNBUFFERED=1; in Rust, println! writes each line, but a BufWriter needs " +
	".flush(); in Java, System.out.flush() after print (println flushes); in Node, " +
	"console.log to a pipe is written later on macOS, so do not end with process.exit()"

// SilentHint is the lesson of a server that printed nothing at all into the pipe of -pipe.
const SilentHint = "your server printed nothing at all, not even when it was stopped: with " +
	"-pipe its output goes to a pipe, where most runtimes hold it in a buffer, and a program " +
	"ended by SIGTERM never writes that buffer out. " + bufferedAdvice

// tail is the last n of lines.
func tail(lines []string, n int) []string {
	return append([]string(nil), lines[max(0, len(lines)-n):]...)
}

// start starts the server and waits until its port accepts a connection, which it keeps as
// the first client.
func (r *Run) start() error {
	r.setStopping(false)
	if err := r.program.Start(r.port, r.serverLine); err != nil {
		r.say("[tester] cannot start %s: %v", ShellWords(r.program.Command(r.port)), err)
		return fmt.Errorf("cannot start your server: %v", err)
	}
	r.say("[tester] started: %s", ShellWords(r.program.Command(r.port)))
	if why := r.program.NoTerminal(); why != "" {
		r.say("[tester] %s: your server's output goes to a pipe, where it may be held in a buffer", why)
	}
	go r.watchExit(r.program.ended())
	conn, err := r.program.WaitReady()
	if err != nil {
		return err // said once, as what was expected or why the checks could not run
	}
	r.probe = conn
	r.say("[tester] port %d accepts connections: your server is ready", r.port)
	return nil
}

// setStopping says whether the tester is stopping the server, so that its exit is expected.
func (r *Run) setStopping(stopping bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopping = stopping
}

// watchExit notes in the transcript a server that ends while the check still runs.
func (r *Run) watchExit(exited <-chan struct{}) {
	<-exited
	r.mu.Lock()
	stopping := r.stopping
	r.mu.Unlock()
	if !stopping {
		r.say("[tester] your server ended by itself (%s)", r.program.Exited())
	}
}

// Stop stops the server in the middle of a check, the way Ctrl-C would stop it for good:
// SIGTERM to its process group.
func (r *Run) Stop() {
	r.setStopping(true)
	r.say("[tester] stopping your server (SIGTERM to its process group)")
	if r.program.Stop() {
		r.say("[tester] your server was still running %s after SIGTERM: killed it (SIGKILL)", human(StopGrace))
	}
}

// Restart starts the server again on the same port, right away. A server that cannot listen
// and exits is what the caller checks for, not a server that ended in the middle of a check.
func (r *Run) Restart() error {
	r.probe = nil
	err := r.start()
	if err != nil {
		r.setStopping(true)
	}
	return err
}

// serverLine receives each line the server prints.
func (r *Run) serverLine(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.output.Add(line)
	shown := fit(serverPrefix+printable(line), len(line), excerptWidth)
	switch {
	case r.hidden >= 0:
		r.hidden++
	case r.repeated(shown):
	case r.shown < maxShownLines:
		r.transcript = append(r.transcript, shown)
		r.shown++
	case r.shown == maxShownLines:
		r.transcript = append(r.transcript, "[your server] ... (more lines, not shown)")
		r.shown++
	}
}

// repeated counts line as one more of the transcript's last line, if it is the same line
// ("[your server] Server: client connected (x50)"); r.mu must be held.
func (r *Run) repeated(line string) bool {
	if len(r.transcript) == 0 {
		return false
	}
	last := r.transcript[len(r.transcript)-1]
	if last == line {
		r.transcript[len(r.transcript)-1] = line + " (x2)"
		return true
	}
	if m := repeatCount.FindStringSubmatch(last); m != nil && m[1] == line {
		n, _ := strconv.Atoi(m[2])
		r.transcript[len(r.transcript)-1] = fmt.Sprintf("%s (x%d)", line, n+1)
		return true
	}
	return false
}

var repeatCount = regexp.MustCompile(`^(.*) \(x(\d+)\)$`)

// HideOutput stops showing the server's lines in the transcript, during a flood of them.
func (r *Run) HideOutput() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hidden = 0
}

// ShowOutput shows the server's lines again, after one line that counts those not shown.
func (r *Run) ShowOutput() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hidden > 0 {
		r.transcript = append(r.transcript, fmt.Sprintf("[your server] ... (%d lines, not shown)", r.hidden))
	}
	r.hidden = -1
}

// PauseOutput stops reading the server's output, as a terminal paused with Ctrl-S (or a pipe
// nobody reads) does: once the terminal or pipe is full, the server's next write blocks.
func (r *Run) PauseOutput() {
	r.program.PauseOutput()
	what := "as Ctrl-S pauses a terminal"
	if r.program.Pipe {
		what = "a pipe nobody reads"
	}
	r.Say("stops reading your server's output (%s)", what)
}

// ResumeOutput reads the server's output again (a stop does too).
func (r *Run) ResumeOutput() {
	r.Say("reads your server's output again")
	r.program.ResumeOutput()
}

// say adds a line to the transcript.
func (r *Run) say(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.test != nil && len(r.transcript) == 100 { // a failed test shows only the last 10
		r.transcript = append(r.transcript[:0], r.transcript[90:]...)
	}
	r.transcript = append(r.transcript, fmt.Sprintf(format, args...))
}

// Say adds the tester's own remark to the transcript.
func (r *Run) Say(format string, args ...any) { r.say("[tester] "+format, args...) }

// Fail records what was expected and the lesson the server missed, and ends the check. A
// server that ended by itself meanwhile is reported as that, since it is what to fix first:
// whatever the check was waiting for could not come. A test client's Run fails its test.
func (r *Run) Fail(expected, hint string) {
	if r.test != nil {
		r.test.Helper()
		r.mu.Lock()
		said := strings.Join(tail(r.transcript, 10), "\n")
		r.mu.Unlock()
		if hint != "" {
			expected += ": " + hint
		}
		r.test.Fatalf("expected %s; the client's last lines:\n%s", expected, said)
	}
	// A server that dies closes its connections a moment before its exit is collected.
	select {
	case <-r.program.ended():
	case <-time.After(300 * time.Millisecond):
	}
	if status := r.endedByItself(); status != "" {
		r.result.Ended = status
		expected = "your server to keep running until the check was over"
		hint = fmt.Sprintf("your server ended (%s) in the middle of the check; its last lines "+
			"are above. Whatever one client does (leave, vanish with a reset, send bytes that "+
			"are not text), the server must go on serving the others", status)
	}
	r.result.Expected, r.result.Hint = expected, hint
	r.mu.Lock()
	r.result.failedAt = len(r.transcript)
	r.mu.Unlock()
	runtime.Goexit()
}

// endedByItself returns how the server ended, if it did while the tester was not stopping it.
func (r *Run) endedByItself() string {
	status := r.program.Exited()
	if status == "" {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		return ""
	}
	return status
}

// Observe records what an observation saw, or a note of a required check.
func (r *Run) Observe(format string, args ...any) {
	r.result.Observation = fmt.Sprintf(format, args...)
}

// Note records a fact for the tests of our own stages.
func (r *Run) Note(key, value string) { r.result.Notes[key] = value }

// Skip ends a check that cannot measure here; it still passes.
func (r *Run) Skip(why string) {
	r.result.Skipped = why
	r.result.Passed = true
	runtime.Goexit()
}

// CPU measures the CPU use of the server's process group over window, as a share of one core,
// and skips the check where that cannot be measured.
func (r *Run) CPU(window time.Duration) float64 {
	if !ProcReadable {
		r.Skip("CPU use is not measured on " + runtime.GOOS + " (it needs Linux's /proc)")
	}
	use, err := r.program.CPU(window)
	if err != nil {
		r.Skip("could not measure CPU use: " + err.Error())
	}
	r.result.Values["cpu"] = use
	r.Say("your server's processes used %.0f%% of a core over %s", use*100, human(window))
	return use
}

// WaitLog waits up to d for an output line, after the last one it returned, for which match
// is true, and returns it; other lines are passed over.
func (r *Run) WaitLog(d time.Duration, match func(line string) bool) (string, bool) {
	line, ok := r.output.Next(d, match)
	if !ok {
		r.mu.Lock()
		r.awaited = append(r.awaited, awaited{match: match, after: len(r.output.All())})
		r.mu.Unlock()
	}
	return line, ok
}

// DropProbe closes the connection that found the server ready, so that no client at all is
// connected, and waits up to a second for the server to close its end (one that never closes
// a client that left is not waited for longer).
func (r *Run) DropProbe() {
	conn := r.probe
	if conn == nil {
		return
	}
	r.probe = nil
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, conn)
	}
	conn.Close()
	r.Say("closed the connection that found your server ready: no client is connected")
}

// settle is how long a client that the server has accepted is given to join, before anyone
// talks to it.
const settle = 100 * time.Millisecond

// Client connects a new client, named client-1, client-2... The first one is the connection
// that found the server ready: a server that serves one client only has accepted that one.
func (r *Run) Client() *Client {
	if conn := r.probe; conn != nil {
		r.probe = nil
		return r.connect(func() (net.Conn, error) { return conn, nil })
	}
	return r.connect(func() (net.Conn, error) { return net.DialTimeout("tcp", r.Addr, Deadline) })
}

// connect names the next client, connects it with dial, and waits until the server has
// accepted it.
func (r *Run) connect(dial func() (net.Conn, error)) *Client {
	name := fmt.Sprintf("client-%d", len(r.clients)+1)
	conn, err := dial()
	if err != nil {
		r.say("[%s] cannot connect: %v", name, err)
		r.Fail(name+" to connect", "your server stopped accepting connections")
	}
	c := r.addClient(name, conn)
	if !r.connectingMany {
		r.waitAccepted(name)
	}
	return c
}

// waitAccepted waits until the server has accepted every connection made so far (from
// stage 3 on; stages 1 and 2 accept one client only): a line sent before the server accepts
// a client is never relayed to it. On Linux it watches the listening socket's accept queue
// empty; elsewhere it gives the server 200 ms.
func (r *Run) waitAccepted(name string) {
	if r.stage < 3 {
		return
	}
	deadline := time.Now().Add(Deadline)
	for {
		waiting, ok := acceptQueue(r.port)
		if !ok {
			time.Sleep(200 * time.Millisecond)
			return
		}
		if waiting == 0 {
			// Accepted is not yet joined: a server with a thread per client adds the client
			// to its list in that thread, a moment after accepting it.
			time.Sleep(settle)
			return
		}
		if time.Now().After(deadline) {
			r.say("[tester] %d connections still wait in your server's accept queue after %s", waiting, human(Deadline))
			r.Fail(name+" to be accepted", "accept every client that connects, without waiting for another client to say something first")
		}
		time.Sleep(time.Millisecond)
	}
}

// Clients connects n new clients, and says so in one line.
func (r *Run) Clients(n int) []*Client {
	r.connectingMany = true
	clients := make([]*Client, n)
	for i := range clients {
		clients[i] = r.Client()
	}
	r.connectingMany = false
	r.say("[tester] connected %s to %s", clients[0].Name, clients[n-1].Name)
	r.waitAccepted(clients[n-1].Name)
	return clients
}

// SmallReceiveBuffer dials with a receive buffer of 4 KiB, so that a client that does not read
// fills up quickly and the server has to hold the rest.
var SmallReceiveBuffer = net.Dialer{Timeout: Deadline, Control: func(_, _ string, raw syscall.RawConn) error {
	var err error
	raw.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	return err
}}

// SlowClient connects a client whose receive buffer is small (4 KiB), so that once it stops
// reading, the server soon has to keep what it cannot send.
func (r *Run) SlowClient() *Client {
	return r.connect(func() (net.Conn, error) { return SmallReceiveBuffer.Dial("tcp", r.Addr) })
}

func (r *Run) addClient(name string, conn net.Conn) *Client {
	c := &Client{run: r, Name: name, Conn: conn, Reader: bufio.NewReaderSize(conn, 64<<10)}
	r.clients = append(r.clients, c)
	local, remote := conn.LocalAddr().(*net.TCPAddr), conn.RemoteAddr().(*net.TCPAddr)
	if !r.connectingMany {
		r.say("[%s] connected (port %d -> port %d)", name, local.Port, remote.Port)
	}
	return c
}

// closeClients ends every client left open, in good order (see Client.goodbye), and waits
// for those still saying goodbye.
func (r *Run) closeClients() {
	if r.probe != nil {
		r.probe.Close()
	}
	for _, c := range r.clients {
		if !c.closed {
			c.closed = true
			c.goodbye(300 * time.Millisecond)
		}
	}
	r.closing.Wait()
}

// Client is one connection of a check, or of a test (TestClient). Everything it sends and
// receives goes into the transcript, prefixed with its name.
type Client struct {
	run    *Run
	Name   string
	Conn   net.Conn
	Reader *bufio.Reader // what it has received and not yet read
	closed bool
	sent   map[string]bool // the lines it sent, and pieces of them, without their endings
	// unfinished is what it sent after its last "\n".
	unfinished string
	// drained is closed once a client that only sends has stopped reading and discarding
	// what it receives (see Drain); nil if it reads for itself.
	drained chan struct{}
}

// Failer is a test: testing.TB has both methods, and the tester does not import testing.
type Failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

// TestClient is a client of a test on the connection conn: where a check's client ends the
// check, it fails test, showing its last lines sent and received. It reads exact bytes, with
// no house style to look past.
func TestClient(test Failer, conn net.Conn) *Client {
	r := &Run{test: test, result: &Result{}, hidden: -1}
	return r.addClient("client", conn)
}

// NextLine reads one line, with its terminator, failing if none comes within the Deadline.
func (c *Client) NextLine() string {
	line, err := c.ReadLine(Deadline)
	if err != nil {
		c.run.Fail(fmt.Sprintf("%s to receive a line", c.Name), "")
	}
	return line
}

// ExpectEOF proves that the server ends the connection in good order (end of stream, not a
// reset) within the Deadline, with nothing more before it.
func (c *Client) ExpectEOF() {
	c.Conn.SetReadDeadline(time.Now().Add(Deadline))
	rest, err := io.ReadAll(c.Reader)
	c.sayRead(string(rest), err, Deadline)
	if err != nil || len(rest) > 0 {
		c.run.Fail(fmt.Sprintf("%s's connection to end in good order, with nothing more", c.Name), "")
	}
}

// Drain reads and throws away everything the client receives, from now on, in the background:
// a client that only sends must still read, or the server's queue for it grows until the
// server drops it (as a server should drop a client that does not read).
func (c *Client) Drain() {
	c.drained = make(chan struct{})
	go func() {
		defer close(c.drained)
		io.Copy(io.Discard, c.Reader)
	}()
}

// Send writes s as it is; add the line terminator yourself.
func (c *Client) Send(s string) {
	c.run.say("[%s] sent %s", c.Name, quote(s))
	c.write(s)
}

// remember notes the lines of s, so that ReadOthers can pass over them if they come back.
func (c *Client) remember(s string) {
	if c.sent == nil {
		c.sent = map[string]bool{}
	}
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			c.sent[line] = true
			c.run.sentLine(line)
		}
	}
}

// ReadOthers reads the next line that relays another client's line (see readRelayed),
// passing over the client's own lines if the server sends them back: that mistake is the
// broadcast check's to report, and a check of something else must not blame it on what it
// checks.
func (c *Client) ReadOthers(d time.Duration, show bool) (Relayed, error) {
	for {
		got, err := c.readRelayed(d, show)
		if err != nil || !c.sent[got.Message] {
			return got, err
		}
	}
}

func (c *Client) write(s string) {
	if c.run.test == nil { // a test asserts exact bytes: it has nothing to recognise
		c.remember(s)
		// A line sent in several writes is a line too, once its end is sent.
		c.unfinished += s
		if end := strings.LastIndex(c.unfinished, "\n"); end >= 0 {
			c.remember(c.unfinished[:end])
			c.unfinished = c.unfinished[end+1:]
		}
	}
	c.Conn.SetWriteDeadline(time.Now().Add(Deadline))
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.run.say("[%s] cannot send: %v", c.Name, reasonOf(err))
		c.run.Fail(fmt.Sprintf("%s to be able to send", c.Name), "your server closed the connection of a client that was talking to it")
	}
}

// ReadLine reads one line, with its terminator, waiting up to d; what it got (or did not)
// goes into the transcript.
func (c *Client) ReadLine(d time.Duration) (string, error) {
	return c.readLine(d, true)
}

func (c *Client) readLine(d time.Duration, show bool) (string, error) {
	c.Conn.SetReadDeadline(time.Now().Add(d))
	line, err := c.Reader.ReadString('\n')
	if err == nil && show {
		c.run.say("[%s] received %s", c.Name, quote(line))
	}
	c.sayRead(line, err, d)
	return line, err
}

// sayRead puts into the transcript why a read of a line within d ended without one.
func (c *Client) sayRead(line string, err error, d time.Duration) {
	if err == nil {
		return
	}
	if line != "" {
		c.run.say("[%s] received %s, with no end of line", c.Name, quote(line))
	}
	switch {
	case isTimeout(err):
		c.run.say("[%s] received nothing more within %s", c.Name, human(d))
	case errors.Is(err, io.EOF):
		c.run.say("[%s] the connection was closed by your server", c.Name)
	default:
		c.run.say("[%s] %v", c.Name, reasonOf(err))
	}
}

// ExpectNothing proves that nothing arrives for d, which must be positive; up to stage 5,
// whole lines of the server's own (house style) may. A line that relays the client's own
// line back to it fails with echoHint, whatever hint is given.
func (c *Client) ExpectNothing(d time.Duration, hint string) {
	if d <= 0 {
		c.run.Fail("ExpectNothing to wait a positive duration", "a wait of 0 sees nothing and proves nothing")
	}
	deadline := time.Now().Add(d)
	for range maxStyleLines {
		c.Conn.SetReadDeadline(deadline)
		_, err := c.Reader.ReadByte()
		if isTimeout(err) {
			c.run.say("[%s] expected nothing, waited %s ✓", c.Name, human(d))
			return
		}
		if err != nil {
			c.run.say("[%s] expected nothing, but %v", c.Name, reasonOf(err))
			c.run.Fail(fmt.Sprintf("%s to stay connected and receive nothing", c.Name), hint)
		}
		c.Reader.UnreadByte()
		c.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		line, err := c.Reader.ReadString('\n')
		text := trimEnding(line)
		if message, _ := c.run.relays(text); c.run.styled() && err == nil && c.sent[message] {
			c.run.say("[%s] received its own line back: %s", c.Name, quote(line))
			c.run.Fail(fmt.Sprintf("%s not to receive its own line", c.Name), echoHint)
		}
		if err != nil || !c.run.styled() || c.run.isRelay(text) {
			c.run.say("[%s] expected nothing for %s, received %s", c.Name, human(d), quote(line))
			c.run.Fail(fmt.Sprintf("%s to receive nothing", c.Name), hint)
		}
		c.run.noteOwn(text)
	}
}

// ExpectClosed proves that the server closes the connection within the Deadline, passing
// over anything that comes first.
func (c *Client) ExpectClosed(hint string) {
	c.Conn.SetReadDeadline(time.Now().Add(Deadline))
	n, err := io.Copy(io.Discard, c.Reader)
	if isTimeout(err) {
		c.run.say("[%s] still connected after %s", c.Name, human(Deadline))
		c.run.Fail(fmt.Sprintf("your server to close %s's connection", c.Name), hint)
	}
	if n > 0 {
		c.run.say("[%s] received %d more bytes, then the connection was closed", c.Name, n)
	} else {
		c.run.say("[%s] the connection was closed by your server", c.Name)
	}
}

// Close ends the connection in good order, the way a well-behaved client leaves: it says it
// is done sending (FIN), reads whatever the server still sends until the server closes its
// end, then closes. Closing with unread data would make the kernel send a reset instead, and
// the server's log would show an error that the tester caused. A test's client closes at
// once: the test knows what it left unread.
func (c *Client) Close() {
	c.run.say("[%s] closed its connection", c.Name)
	c.closed = true
	if c.run.test != nil { // a test may be reading it in a goroutine of its own: close at once
		c.Conn.Close()
		return
	}
	c.goodbye(2 * time.Second)
}

// goodbye closes the client in good order in the background, giving the server up to wait to
// close its end.
func (c *Client) goodbye(wait time.Duration) {
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		tcp.CloseWrite()
	}
	c.run.closing.Add(1)
	go func() {
		defer c.run.closing.Done()
		c.Conn.SetReadDeadline(time.Now().Add(wait))
		if c.drained != nil {
			<-c.drained // the client's own drain reads until the end, or the deadline
		} else {
			io.Copy(io.Discard, c.Reader)
		}
		c.Conn.Close()
	}()
}

// Reset makes the client vanish the way a crashed program or a lost network does: its
// connection ends with a reset (RST), not in good order.
func (c *Client) Reset() {
	c.run.say("[%s] vanished: its connection ended with a reset (RST), as when a program crashes", c.Name)
	c.closed = true
	if tcp, ok := c.Conn.(*net.TCPConn); ok {
		tcp.SetLinger(0) // close sends RST at once
	}
	c.Conn.Close()
	// The server is given a moment to notice, as it would have in a room before anyone
	// spoke again: what is checked is what it does once it knows.
	time.Sleep(300 * time.Millisecond)
}

// reasonOf shortens a network error to its cause: "connection reset by peer".
func reasonOf(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Err.Error()
	}
	return err.Error()
}

// quote shows bytes the way Go writes them ("Hello\r\n"), shortened past 48 bytes to their
// start and end, so that a transcript line fits in 80 columns.
func quote(s string) string {
	if len(s) <= 48 {
		return strconv.Quote(s)
	}
	head, tail := strconv.Quote(s[:28]), strconv.Quote(s[len(s)-6:])
	return fmt.Sprintf("%s...%s (%d bytes)", head[:len(head)-1], tail[1:], len(s))
}

// printable is a server's output line as it is if it is plain text, quoted otherwise, so that
// a server cannot drive the terminal of the person reading the transcript.
func printable(line string) string {
	if !utf8.ValidString(line) {
		return strconv.Quote(line)
	}
	for _, r := range line {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return strconv.Quote(line)
		}
	}
	return line
}

// CheckStage runs every check of a stage against program, passing each result to report as
// soon as it is known. It stops at a check that could not run, and returns its error.
func CheckStage(program *Program, stage int, report func(*Result)) error {
	for _, check := range StageChecks(stage) {
		result := RunCheck(program, stage, check)
		report(result)
		if result.Err != nil {
			return result.Err
		}
	}
	return nil
}

// isTimeout reports whether err is a deadline that expired.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}
