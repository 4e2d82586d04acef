//go:build linux || darwin

package main

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness"
	"github.com/stretchr/testify/require"
)

// A short soak per poller: receivers that stay get every line of every sender that comes and
// goes, whichever way it leaves (a last line without terminator included), in order and once;
// afterwards the server holds no more sockets than before and sleeps. `go run
// ./harness/cmd/soak` is the long form.
func TestStage6Soak(t *testing.T) {
	t.Parallel()
	for _, poller := range []string{"select", harness.NativePoller()} {
		t.Run(poller, func(t *testing.T) {
			t.Parallel()
			s, err := harness.StartServerProcess("stage6-hardened", "-poller", poller, "-quiet")
			if s != nil {
				t.Cleanup(s.Kill)
			}
			require.NoError(t, err)
			// Stage 6 promises to relay a last line that has no terminator once the client has
			// closed, as every soak asks: that is what such a client meant.
			c := DefaultSoakConfig
			c.Addr, c.ServerPID = s.Addr, s.PID()
			c.Duration, c.Receivers, c.Senders, c.MaxConnections = 1500*time.Millisecond, 6, 6, 20_000
			c.IdleWindow, c.Quiet = 500*time.Millisecond, time.Second
			report, err := Soak(c)
			if err != nil {
				t.Fatal(err)
			}
			s.Kill() // its log is complete once it has ended
			summary, ok := SoakServerLog(s.Process)
			if report.Failed() || !ok {
				t.Fatalf("\n%s%s", report, summary)
			}
			t.Logf("\n%s%s", report, summary)
		})
	}
}

// brokenRelay is a goroutine-per-connection relay, in this process, that makes one mistake on
// purpose ("" for none), so that the soak's checks are seen to catch each.
func brokenRelay(t *testing.T, mistake string) string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var lines atomic.Int64 // over all connections: one makes its mistake at every 10th
	t.Cleanup(func() {
		listener.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
	})
	relay := func(from net.Conn, line string) {
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			if c != from {
				c.SetWriteDeadline(time.Now().Add(harness.Deadline))
				io.WriteString(c, line+"\r\n")
			}
		}
	}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = true
			mu.Unlock()
			go func() {
				defer func() {
					mu.Lock()
					delete(conns, conn)
					mu.Unlock()
					conn.Close()
				}()
				in := bufio.NewReader(conn)
				held := ""
				for {
					line, err := in.ReadString('\n')
					if err != nil {
						if line != "" && mistake != "drop-last" {
							relay(conn, line) // a last line without terminator
						}
						return
					}
					line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
					n := lines.Add(1)
					switch {
					case strings.HasPrefix(line, soakSyncLine):
					case mistake == "duplicate" && n%10 == 0:
						relay(conn, line)
					case mistake == "corrupt" && n%10 == 0:
						line = strings.Replace(line, "line", "lien", 1)
					case mistake == "drop" && n%10 == 0:
						continue
					case mistake == "reorder" && n%5 == 1 && held == "":
						held = line // sent after the next line
						continue
					}
					relay(conn, line)
					if held != "" {
						relay(conn, held)
						held = ""
					}
				}
			}()
		}
	}()
	return listener.Addr().String()
}

func TestSoakCatchesMistakes(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		mistake string
		count   func(r *SoakReport) int64
	}{
		{"", func(r *SoakReport) int64 { return 0 }},
		{"duplicate", func(r *SoakReport) int64 { return r.Duplicated }},
		{"corrupt", func(r *SoakReport) int64 { return r.Corrupted }},
		{"drop", func(r *SoakReport) int64 { return r.Lost }},
		{"drop-last", func(r *SoakReport) int64 { return r.LastMissed }},
		{"reorder", func(r *SoakReport) int64 { return r.Reordered }},
	} {
		t.Run("mistake="+c.mistake, func(t *testing.T) {
			config := DefaultSoakConfig
			config.Addr, config.Duration, config.Receivers, config.Senders = brokenRelay(t, c.mistake), 200*time.Millisecond, 3, 3
			config.MaxConnections, config.Quiet = 300, 300*time.Millisecond
			report, err := Soak(config)
			require.NoError(t, err)
			if c.mistake == "" {
				require.False(t, report.Failed(), "%s", report)
				require.Positive(t, report.LastRelayed)
				return
			}
			require.True(t, report.Failed(), "%s", report)
			require.Positive(t, c.count(report), "%s", report)
		})
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}
