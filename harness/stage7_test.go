//go:build linux || darwin

package harness

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/tester"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// Stage 7 speaks Protohackers' Budget Chat (plus /msg and /who): every client gives a name
// first, and every line it is sent says who it comes from. Server lines end in "\n" alone.
const stage7 = "stage7-identity"

const (
	stage7Welcome = "Welcome to the chat! What is your name?\n"
	stage7Illegal = "* Sorry, a name is 1 to 32 letters and digits.\n"
)

// connectStage7 connects a client and reads the welcome; the client has not joined yet.
func connectStage7(t *testing.T, s *Server) *tester.Client {
	t.Helper()
	c := Dial(t, s.Addr)
	require.Equal(t, "Server: client connected", s.NextLine(t))
	require.Equal(t, stage7Welcome, c.NextLine())
	return c
}

// joinStage7 connects a client and joins it as name. others are the names it must find in
// the room, in the order they joined.
func joinStage7(t *testing.T, s *Server, name string, others ...string) *tester.Client {
	t.Helper()
	c := connectStage7(t, s)
	c.Send(name + "\n")
	require.Equal(t, "Server: "+name+" joined", s.NextLine(t))
	require.Equal(t, presenceLine(others...), c.NextLine())
	return c
}

// presenceLine is the line a newcomer gets about the others.
func presenceLine(others ...string) string {
	if len(others) == 0 {
		return "* The room is empty\n"
	}
	return "* The room contains: " + strings.Join(others, ", ") + "\n"
}

// The name prompt, and names: 1 to 32 ASCII letters or digits. Anything else gets one line
// and a disconnect, and nobody else hears of it; the log says what was refused, with control
// bytes escaped.
func TestStage7Names(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller)
		watcher := joinStage7(t, s, "watcher")
		lurker := connectStage7(t, s) // connected, not named

		for _, name := range []struct{ sent, logged string }{
			{"", ""},
			{"\r", ""}, // "\r\n" ends the line: the name is still empty
			{"bad name", "bad name"},
			{"naïve", "naïve"},
			{"bob!", "bob!"},
			{strings.Repeat("a", 33), strings.Repeat("a", 33)},
			{"\x1b[2Jred", `\x1b[2Jred`},
			{"bad\xffbyte", `bad\xffbyte`},
		} {
			c := connectStage7(t, s)
			c.Send(name.sent + "\n")
			require.Equal(t, stage7Illegal, c.NextLine(), "name %q", name.sent)
			c.ExpectEOF()
			require.Equal(t, fmt.Sprintf(`Server: client disconnected (illegal name "%s")`, name.logged),
				s.NextLine(t))
		}

		long := strings.Repeat("Z", 32)
		mid := "Alice0123456789x" // 16
		joinStage7(t, s, long, "watcher")
		joinStage7(t, s, mid, "watcher", long)
		require.Equal(t, "* "+long+" has entered the room\n", watcher.NextLine())
		require.Equal(t, "* "+mid+" has entered the room\n", watcher.NextLine())
		expectQuiet(watcher, lurker) // not a word about the refused ones
	})
}

// A name that is in the room is refused; once its owner has left, it is free again.
func TestStage7NameTaken(t *testing.T) {
	t.Parallel()
	s := StartServer(t, stage7)
	alice := joinStage7(t, s, "alice")
	bob := joinStage7(t, s, "bob", "alice")
	require.Equal(t, "* bob has entered the room\n", alice.NextLine())

	second := connectStage7(t, s)
	second.Send("alice\r\n")
	require.Equal(t, "* Sorry, the name alice is taken.\n", second.NextLine())
	second.ExpectEOF()
	require.Equal(t, `Server: client disconnected (name "alice" is taken)`, s.NextLine(t))
	expectQuiet(alice, bob)

	alice.Close()
	require.Equal(t, "Server: alice left", s.NextLine(t))
	require.Equal(t, "* alice has left the room\n", bob.NextLine())
	joinStage7(t, s, "alice", "bob")
	require.Equal(t, "* alice has entered the room\n", bob.NextLine())
}

// The newcomer's one line about who is there: empty, then the others in the order they
// joined, also after someone in the middle has left; /who answers the asker alone, with
// everyone, the asker included.
func TestStage7Presence(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller)
		bob := joinStage7(t, s, "bob")
		charlie := joinStage7(t, s, "charlie", "bob")
		dave := joinStage7(t, s, "dave", "bob", "charlie")
		charlie.Close()
		require.Equal(t, "Server: charlie left", s.NextLine(t))
		alice := joinStage7(t, s, "alice", "bob", "dave")

		require.Equal(t, "* charlie has entered the room\n", bob.NextLine())
		require.Equal(t, "* dave has entered the room\n", bob.NextLine())
		require.Equal(t, "* charlie has left the room\n", bob.NextLine())
		require.Equal(t, "* alice has entered the room\n", bob.NextLine())
		require.Equal(t, "* charlie has left the room\n", dave.NextLine())
		require.Equal(t, "* alice has entered the room\n", dave.NextLine())

		dave.Send("/who\n")
		require.Equal(t, "* Present: bob, dave, alice\n", dave.NextLine())
		require.Equal(t, "Server: received from dave: /who", s.NextLine(t))
		expectQuiet(alice, bob)
	})
}

// Joins and leaves are told to the joined users only: a client that has not given its name
// hears nothing, and a client that leaves before giving one causes nothing. Things said before
// a client joined never reach it: its first line after the welcome is the presence line.
func TestStage7OnlyJoinedHear(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller)
		alice := joinStage7(t, s, "alice")
		lurker := connectStage7(t, s)

		bob := joinStage7(t, s, "bob", "alice")
		require.Equal(t, "* bob has entered the room\n", alice.NextLine())
		bob.Send("hello, who is here?\n")
		require.Equal(t, "[bob] hello, who is here?\n", alice.NextLine())
		require.Equal(t, "Server: received from bob: hello, who is here?", s.NextLine(t))
		quitter := connectStage7(t, s)
		quitter.Close()
		require.Equal(t, "Server: client disconnected", s.NextLine(t))
		bob.Close()
		require.Equal(t, "Server: bob left", s.NextLine(t))
		require.Equal(t, "* bob has left the room\n", alice.NextLine())
		expectQuiet(alice, lurker) // nothing about the quitter, nothing at all before joining

		lurker.Send("carol\n")
		require.Equal(t, "Server: carol joined", s.NextLine(t))
		require.Equal(t, presenceLine("alice"), lurker.NextLine())
		require.Equal(t, "* carol has entered the room\n", alice.NextLine())
		lurker.ExpectNothing(200*time.Millisecond, "")
	})
}

// joinThree joins alice, bob and carol, in that order, and reads what each is told of those
// who came after.
func joinThree(t *testing.T, s *Server) (alice, bob, carol *tester.Client) {
	t.Helper()
	alice = joinStage7(t, s, "alice")
	bob = joinStage7(t, s, "bob", "alice")
	carol = joinStage7(t, s, "carol", "alice", "bob")
	require.Equal(t, "* bob has entered the room\n", alice.NextLine())
	require.Equal(t, "* carol has entered the room\n", alice.NextLine())
	require.Equal(t, "* carol has entered the room\n", bob.NextLine())
	return alice, bob, carol
}

// A joined user's lines go to every other joined user as "[NAME] message\n", never back to the
// sender; "\r\n" from a client is stripped, lines are framed as in stage 5, and only /msg and
// /who are commands: any other line, "/" or not, is a message.
func TestStage7Messages(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller)
		alice, bob, carol := joinThree(t, s)

		long := strings.Repeat("0123456789", 100)
		messages := []string{
			"Hello", long, "", "/who is there", "/msgbob hi", "/nick alice2", "/", "tab\tand é",
		}
		var sent strings.Builder
		for i, m := range messages {
			sent.WriteString(m + []string{"\r\n", "\n"}[i%2])
		}
		alice.Send(sent.String()[:7]) // "Hello\r\n" in one write: the rest in two more
		alice.Send(sent.String()[7:500])
		alice.Send(sent.String()[500:])
		for _, m := range messages {
			require.Equal(t, "[alice] "+m+"\n", bob.NextLine())
			require.Equal(t, "[alice] "+m+"\n", carol.NextLine())
			require.Equal(t, "Server: received from alice: "+m, s.NextLine(t))
		}
		alice.ExpectNothing(200*time.Millisecond, "") // no echo

		bob.Send("hi alice\n")
		require.Equal(t, "[bob] hi alice\n", alice.NextLine())
		require.Equal(t, "[bob] hi alice\n", carol.NextLine())
		bob.ExpectNothing(100*time.Millisecond, "")
	})
}

// /msg NAME text goes to NAME alone, in order with the sender's other lines; an absent name
// and a /msg without a name and a text get their own lines, to the sender alone.
func TestStage7PrivateMessages(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller)
		alice, bob, carol := joinThree(t, s)
		lurker := connectStage7(t, s)

		alice.Send("before\n/msg bob just for you, bob\r\nafter\n")
		require.Equal(t, "[alice] before\n", bob.NextLine())
		require.Equal(t, "[alice -> you] just for you, bob\n", bob.NextLine())
		require.Equal(t, "[alice] after\n", bob.NextLine())
		require.Equal(t, "[alice] before\n", carol.NextLine())
		require.Equal(t, "[alice] after\n", carol.NextLine())
		s.ExpectLines(t,
			"Server: received from alice: before",
			"Server: received from alice: /msg bob just for you, bob",
			"Server: received from alice: after")

		alice.Send("/msg zed hello?\n")
		require.Equal(t, "* Nobody called zed is here.\n", alice.NextLine())
		for _, usage := range []string{"/msg", "/msg ", "/msg bob", "/msg  bob hi"} {
			alice.Send(usage + "\n")
			require.Equal(t, "* Usage: /msg NAME text\n", alice.NextLine(), "after %q", usage)
		}
		s.ExpectLines(t,
			"Server: received from alice: /msg zed hello?",
			"Server: received from alice: /msg",
			"Server: received from alice: /msg ",
			"Server: received from alice: /msg bob",
			"Server: received from alice: /msg  bob hi")

		carol.Send("/who\n")
		require.Equal(t, "* Present: alice, bob, carol\n", carol.NextLine())
		expectQuiet(bob, carol, alice, lurker)
	})
}

// A client that says its name and a few lines and closes at once, the last line without its
// "\n", has joined, said every line and left, in that order, for everyone else.
func TestStage7LastWords(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller)
		bob := joinStage7(t, s, "bob")
		alice := Dial(t, s.Addr)
		alice.Send("alice\nHello\r\nbye")
		alice.Close()
		for _, want := range []string{
			"* alice has entered the room\n", "[alice] Hello\n", "[alice] bye\n",
			"* alice has left the room\n",
		} {
			require.Equal(t, want, bob.NextLine())
		}
		s.ExpectLines(t, "Server: client connected", "Server: alice joined",
			"Server: received from alice: Hello", "Server: received from alice: bye", "Server: alice left")
	})
}

// The log, one line each, as the article prints it but with names.
func TestStage7Log(t *testing.T) {
	t.Parallel()
	s := StartServer(t, stage7)
	alice := connectStage7(t, s)
	alice.Send("alice\n")
	require.Equal(t, "Server: alice joined", s.NextLine(t))
	alice.Send("Hello\n")
	require.Equal(t, "Server: received from alice: Hello", s.NextLine(t))
	alice.Send("esc \x1b[2J\n")
	require.Equal(t, `Server: received from alice: esc \x1b[2J`, s.NextLine(t))
	alice.Close()
	require.Equal(t, "Server: alice left", s.NextLine(t))
	s.ExpectNoLine(t, 200*time.Millisecond)
}

// What stage 5 promises in a real room still holds: a line over -max-line and more than
// -max-pending waiting get a joined client dropped, and the room is told it left (several
// dropped by one line, each in turn); the loop sleeps while idle, and Ctrl-C stops it cleanly.
func TestStage7Limits(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller, "-max-line", "2000", "-max-pending", "1100")
		alice := joinStage7(t, s, "alice")
		bob := joinStage7(t, s, "bob", "alice")
		carol := joinStage7(t, s, "carol", "alice", "bob")
		dave := joinStage7(t, s, "dave", "alice", "bob", "carol")
		erin := joinStage7(t, s, "erin", "alice", "bob", "carol", "dave")
		room := []*tester.Client{alice, bob, carol, dave, erin}
		names := []string{"alice", "bob", "carol", "dave", "erin"}
		for i, c := range room {
			for _, later := range names[i+1:] {
				require.Equal(t, "* "+later+" has entered the room\n", c.NextLine())
			}
		}

		bob.Send(strings.Repeat("x", 2001) + "\n")
		require.Equal(t, "Server: bob left (line longer than 2000 bytes)", s.NextLine(t))
		require.Equal(t, "Server: line longer than 2000 bytes, disconnecting you\n", bob.NextLine())
		bob.ExpectEOF()
		for _, c := range []*tester.Client{alice, carol, dave, erin} {
			require.Equal(t, "* bob has left the room\n", c.NextLine())
		}

		// More than 1100 bytes for carol at once, whether she reads or not: a private
		// message counts against the limit too.
		big := strings.Repeat("y", 1200)
		alice.Send("/msg carol " + big + "\n")
		s.ExpectLines(t,
			"Server: received from alice: /msg carol "+big,
			"Server: carol left (not reading: more than 1100 bytes pending)")
		goodbye := "Server: more than 1100 bytes waiting for you, disconnecting you\n"
		require.Equal(t, goodbye, carol.NextLine())
		carol.ExpectEOF()
		for _, c := range []*tester.Client{alice, dave, erin} {
			require.Equal(t, "* carol has left the room\n", c.NextLine())
		}

		// One message too big for both others: dave is dropped while the broadcast runs, the
		// room (erin too) hears of it, and erin is dropped next, not skipped.
		alice.Send(big + "\n")
		s.ExpectLines(t,
			"Server: received from alice: "+big,
			"Server: dave left (not reading: more than 1100 bytes pending)",
			"Server: erin left (not reading: more than 1100 bytes pending)")
		require.Equal(t, "* dave has left the room\n", alice.NextLine())
		require.Equal(t, "* erin has left the room\n", alice.NextLine())
		for _, c := range []*tester.Client{dave, erin} {
			require.Equal(t, goodbye, c.NextLine())
			c.ExpectEOF()
		}
		alice.Send("/who\n")
		require.Equal(t, "* Present: alice\n", alice.NextLine())
		require.Equal(t, "Server: received from alice: /who", s.NextLine(t))

		if CPUSupported {
			expectAsleep(t, s, 500*time.Millisecond)
		}
		s.Signal(t, syscall.SIGINT)
		require.Equal(t, 0, s.WaitExit(t, 5*time.Second))
		require.Equal(t, "Server: shutting down", s.NextLine(t))
		alice.ExpectEOF()
	})
}

// A client that stops reading falls behind with its queue kept in the server, and gets all of
// it once it reads again: the flood, then a private line queued for it alone while it was
// behind, then what came after, each byte as it was sent. The flood (5 MB) comes from 20
// senders, each within its flood budget.
func TestStage7SlowReaderCatchesUp(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		r := &room{roomStage: namedRoom, poller: poller}
		r.start(t, "-quiet", "-max-pending", "16777216")
		alice, bob := r.join(t), r.join(t)
		late := r.enter(t, dialSmallReceiveBuffer(t, r.s.Addr))
		senders := r.members(t, 20)
		drainInput(senders)

		// More than the kernel buffers for a client that does not read (about 3 MB on Linux),
		// less than the limit of 16 MiB.
		r.flood(t, bob, senders)

		// The private lines wait behind the flood, in the buffer this pass frames its lines
		// in. The next pass must not frame its lines over them: its message, as long as both
		// together, would fit in the same buffer.
		sync, psst := "["+alice.name+" -> you] sync\n", "["+alice.name+" -> you] psst\n"
		alice.Send("/msg " + bob.name + " sync\n/msg " + late.name + " psst\n")
		require.Equal(t, sync, r.read(t, bob))
		message := "after the flood"
		message += strings.Repeat(".", len(sync)+len(psst)-len(r.relayed(alice, message)))
		after := r.relayed(alice, message)
		alice.Send(message + "\n")
		require.Equal(t, after, r.read(t, bob))

		r.expectVolume(t, late, senders, volumeLines, volumeSize)
		require.Equal(t, psst, r.read(t, late))
		require.Equal(t, after, r.read(t, late))
	})
}

// 50 clients join and chatter at once, in an order that mixes their lines, while one more
// joins and one leaves halfway. Every client must see exactly what it should: every line of
// every other client that was in the room when it was said, in the order its sender sent it,
// and the joins and leaves in between, at the point where they happened.
func TestStage7Chatter(t *testing.T) {
	t.Parallel()
	forEachPoller(t, func(t *testing.T, poller string) {
		s := StartServer(t, stage7, "-poller", poller, "-quiet")
		const clients, rounds, half = 50, 6, 3
		name := func(i int) string { return fmt.Sprintf("c%02d", i) }
		said := func(i, round int) string { return fmt.Sprintf("line %d from %s", round, name(i)) }

		lurker := connectStage7(t, s) // never joins: must hear nothing
		room := make([]*tester.Client, clients)
		var names []string
		for i := range room {
			room[i] = joinStage7(t, s, name(i), names...)
			names = append(names, name(i))
		}

		// Each round, every client says its line in a shuffled order; some send two rounds
		// in one write, some a line in two writes, some with "\r\n".
		random := rand.New(rand.NewPCG(6, 6))
		speak := func(speakers []int, from, to int) {
			for round := from; round < to; round++ {
				order := append([]int(nil), speakers...)
				random.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
				for _, i := range order {
					line := said(i, round) + []string{"\n", "\r\n"}[i%2]
					switch {
					case i%5 == 1 && (round-from)%2 == 0 && round+1 < to:
						continue // sent with the next round, in one write
					case i%5 == 1 && (round-from)%2 == 1:
						room[i].Send(said(i, round-1) + "\n" + line)
					case i%5 == 2:
						room[i].Send(line[:4])
						room[i].Send(line[4:])
					default:
						room[i].Send(line)
					}
				}
			}
		}
		everyone := make([]int, clients)
		for i := range everyone {
			everyone[i] = i
		}
		const leaver = 7
		speak(everyone, 0, half)
		// -quiet: the log has no line per message, so wait for the lines to arrive at the
		// last client instead; once it has all of them, the server has read them all.
		var firstHalf [][]string
		for i := range room {
			firstHalf = append(firstHalf, readLines(t, room[i], clients-1-i+(clients-1)*half))
		}

		late := joinStage7(t, s, "late", names...)
		room[leaver].Close()
		require.Equal(t, "Server: "+name(leaver)+" left", s.NextLine(t))
		var stayers []int
		for i := range room {
			if i != leaver {
				stayers = append(stayers, i)
			}
		}
		room = append(room, late)
		lateIndex := clients
		for _, i := range stayers {
			require.Equal(t, "* late has entered the room\n", room[i].NextLine())
			require.Equal(t, "* "+name(leaver)+" has left the room\n", room[i].NextLine())
		}
		require.Equal(t, "* "+name(leaver)+" has left the room\n", late.NextLine())
		speakers := append(stayers, lateIndex)
		name = func(i int) string {
			if i == lateIndex {
				return "late"
			}
			return fmt.Sprintf("c%02d", i)
		}
		speak(speakers, half, rounds)

		for _, i := range speakers {
			got := readLines(t, room[i], (len(speakers)-1)*(rounds-half))
			var want []string
			for _, j := range speakers {
				if j != i {
					for round := half; round < rounds; round++ {
						want = append(want, "["+name(j)+"] "+said(j, round)+"\n")
					}
				}
			}
			expectPerSender(t, name(i), want, got)
			if i < clients {
				// The first half: the later joiners in join order, then everyone's lines.
				want = []string{}
				for j := i + 1; j < clients; j++ {
					want = append(want, "* "+name(j)+" has entered the room\n")
				}
				require.Equal(t, want, firstHalf[i][:len(want)], "%s: the joins after its own", name(i))
				want = nil
				for j := range clients {
					if j != i {
						for round := range half {
							want = append(want, "["+name(j)+"] "+said(j, round)+"\n")
						}
					}
				}
				expectPerSender(t, name(i), want, firstHalf[i][clients-1-i:])
			}
		}
		for _, i := range speakers {
			room[i].ExpectNothing(time.Millisecond, "")
		}
		lurker.ExpectNothing(time.Millisecond, "")
	})
}

// readLines reads n lines from c.
func readLines(t *testing.T, c *tester.Client, n int) []string {
	t.Helper()
	lines := make([]string, n)
	for i := range lines {
		lines[i] = c.NextLine()
	}
	return lines
}

// expectPerSender checks that got holds exactly the lines of want, and that each sender's
// lines ("[NAME] ...") come in the order want has them: lines from different senders may
// interleave in any way.
func expectPerSender(t *testing.T, receiver string, want, got []string) {
	t.Helper()
	bySender := func(lines []string) map[string][]string {
		m := map[string][]string{}
		for _, line := range lines {
			sender, _, _ := strings.Cut(line, "]")
			m[sender] = append(m[sender], line)
		}
		return m
	}
	if diff := cmp.Diff(bySender(want), bySender(got)); diff != "" {
		t.Fatalf("%s received, by sender (-want +got):\n%s", receiver, diff)
	}
}

// expectQuiet proves that none of clients receives anything more: the first is given 200 ms,
// by which time whatever the others were sent has arrived too.
func expectQuiet(clients ...*tester.Client) {
	clients[0].ExpectNothing(200*time.Millisecond, "")
	for _, c := range clients[1:] {
		c.ExpectNothing(time.Millisecond, "")
	}
}
