package harness

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/stretchr/testify/require"
)

// The harness checks itself: a helper that proves absence, or a CPU meter, that could not fail
// would make every test built on it unable to fail too.

// recorder is a testing.TB that records a failure instead of failing the real test, so that
// a test can prove a helper fails when it should.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	failed   bool
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
}

func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) FailNow()                          { r.Errorf(""); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Errorf(""); runtime.Goexit() }
func (r *recorder) Error(args ...any)                 { r.Errorf("") }

// fails runs check with a recorder, as a test goroutine would, and reports whether it failed.
func fails(t *testing.T, check func(tb testing.TB)) bool {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r.failed
}

// peer listens on loopback and hands the test the server side of one connection.
func peer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { listener.Close() })
	conns := make(chan net.Conn, 1)
	go func() {
		conn, err := listener.Accept()
		if err == nil {
			conns <- conn
		}
	}()
	return listener.Addr().String(), conns
}

func TestHarnessExpectNothing(t *testing.T) {
	t.Parallel()
	addr, accepted := peer(t)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	server := <-accepted
	defer server.Close()
	// Each check is a client of its own on the one connection, failing a recorder.
	expectNothing := func(d time.Duration) func(tb testing.TB) {
		return func(tb testing.TB) { tester.TestClient(tb, conn).ExpectNothing(d, "") }
	}

	require.False(t, fails(t, expectNothing(100*time.Millisecond)),
		"nothing was sent, so ExpectNothing must pass")
	require.True(t, fails(t, expectNothing(0)),
		"a wait of 0 proves nothing, so ExpectNothing must refuse it")
	require.True(t, fails(t, expectNothing(-time.Second)))
	_, err = server.Write([]byte("surprise\r\n"))
	require.NoError(t, err)
	require.True(t, fails(t, expectNothing(2*time.Second)),
		"a line arrived, so ExpectNothing must fail")
}

func TestHarnessReadLineAndClosed(t *testing.T) {
	t.Parallel()
	addr, accepted := peer(t)
	client := Dial(t, addr)
	server := <-accepted
	_, err := server.Write([]byte("Hello\r\nHola\n"))
	require.NoError(t, err)
	require.Equal(t, "Hello\r\n", client.NextLine())
	require.Equal(t, "Hola\n", client.NextLine())
	server.Close()
	client.ExpectClosed("")
}

func TestHarnessProcessLines(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("needs a Unix shell")
	}
	p := Start(t, "/bin/sh", nil, "-c", "echo one; echo two; exec sleep 5")
	p.WaitLine(t, "two")
	require.Equal(t, []string{"one", "two"}, p.Lines())
	require.True(t, fails(t, func(tb testing.TB) {
		q := Start(tb, "/bin/sh", nil, "-c", "echo late")
		q.ExpectNoLine(tb, 2*time.Second)
	}), "a line was printed, so ExpectNoLine must fail")
	require.False(t, fails(t, func(tb testing.TB) { p.ExpectNoLine(tb, 100*time.Millisecond) }))
	require.True(t, fails(t, func(tb testing.TB) { p.ExpectNoLine(tb, 0) }),
		"a wait of 0 proves nothing, so ExpectNoLine must refuse it")

	q := Start(t, "/bin/sh", nil, "-c", "echo bye >&2; exit 3")
	require.Equal(t, 3, q.WaitExit(t, Deadline))
	require.Equal(t, "bye\n", q.Stderr())
}

// TestHarnessCPUMeter shows that the meter tells a process that spins from one that sleeps,
// the difference every stage's CPU test rests on.
func TestHarnessCPUMeter(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs a Unix shell")
	}
	busy := Start(t, "/bin/sh", nil, "-c", "while :; do :; done")
	idle := Start(t, "/bin/sh", nil, "-c", "exec sleep 30")
	busyUse, idleUse := CPUUse(t, busy, 300*time.Millisecond), CPUUse(t, idle, 300*time.Millisecond)
	// A tenth of a core at least: the machine may be shared, and a spinning shell on a busy
	// one still gets far more than a sleeping one's nothing.
	require.Greater(t, busyUse, 0.1, "a shell spinning in a loop")
	require.Less(t, idleUse, 0.02, "a sleeping process")
}

func TestHarnessNormalise(t *testing.T) {
	t.Parallel()
	got := normalise("Server: started. Listening to new connections on port 41234...\r\n"+
		"stage5-select: cannot listen on 127.0.0.1:41234: address already in use\n", 41234, true)
	require.Equal(t, "Server: started. Listening to new connections on port 5555...\n"+
		"stage5-select: cannot listen on :5555: address already in use\n", got)
	got = normalise("Client: connected to server on address 127.0.0.1:41234\n", 41234, false)
	require.Equal(t, "Client: connected to server on address 127.0.0.1:5555\n", got)
}

func TestHarnessCPUClasses(t *testing.T) {
	t.Parallel()
	table := func(figures ...float64) string {
		var out string
		for i, f := range figures {
			out += fmt.Sprintf("stage%d %6.1f%% |\n", i+1, f)
		}
		return out
	}
	require.Equal(t, cpuClasses(table(0, 99.5)), cpuClasses(table(1.2, 63)))
	require.NotEqual(t, cpuClasses(table(0, 99.5)), cpuClasses(table(0, 1.5)), "a stage that stopped burning CPU")
	require.NotEqual(t, cpuClasses(table(0, 99.5)), cpuClasses(table(10, 99.5)), "a stage between the classes")
}
