//go:build linux || darwin

package tester

import (
	"fmt"
	"strings"
	"time"
)

// budgetLine reads a line of a Budget Chat server and returns it without its ending.
func budgetLine(c *Client, what, hint string) string {
	line, err := c.ReadLine(Deadline)
	if err != nil {
		c.run.Fail(fmt.Sprintf("%s to receive %s", c.Name, what), hint)
	}
	return trimEnding(line)
}

// expectEvent reads a line that must start with "*" and name every one of names.
func expectEvent(c *Client, what, hint string, names ...string) string {
	line := budgetLine(c, what, hint)
	ok := strings.HasPrefix(line, "*")
	for _, name := range names {
		ok = ok && strings.Contains(line, name)
	}
	if !ok {
		c.run.Fail(fmt.Sprintf("%s to receive %s: a line starting with \"*\" that names %s",
			c.Name, what, strings.Join(names, " and ")), hint)
	}
	return line
}

const presenceHint = "right after a name is accepted, send the newcomer one line starting with " +
	"\"*\" that names everyone already present (\"* The room contains: alice, bob\"), even " +
	"when nobody is (\"* The room is empty\")"

// connectUnnamed connects a client and reads the name prompt.
func connectUnnamed(r *Run) *Client {
	c := r.Client()
	if _, err := c.ReadLine(3 * time.Second); err != nil {
		r.Fail(c.Name+" to receive a line asking for its name", "send a line asking for a name as soon as a client connects")
	}
	return c
}

// join connects a client, which answers the prompt with name and reads the presence line.
func join(r *Run, name string, present ...string) *Client {
	c := connectUnnamed(r)
	c.Send(name + "\n")
	expectEvent(c, "the list of users present", presenceHint, present...)
	return c
}

// expectEntered has every client in others read that name entered the room.
func expectEntered(name string, others ...*Client) {
	for _, o := range others {
		expectEvent(o, name+"'s arrival", "when a user joins, tell every other joined user with "+
			"a line starting with \"*\" that names them (\"* "+name+" has entered the room\")", name)
	}
}

func checkPrompt(r *Run) {
	c := r.Client()
	line := budgetLine(c, "a line asking for its name",
		"send a line asking for a name as soon as a client connects, before it says anything")
	if strings.TrimSpace(line) == "" {
		r.Observe("The prompt is an empty line; a few words asking for a name would tell a person at nc what to type.")
	}
}

func checkIllegalName(r *Run) {
	alice := join(r, "alice")
	bad := connectUnnamed(r)
	bad.Send("not a name!\n")
	bad.ExpectClosed("a name is 1 or more letters or digits: end the connection of a client " +
		"that asks for anything else (saying why first is allowed, not required)")
	alice.ExpectNothing(300*time.Millisecond,
		"a client that never joined must not be announced: nobody hears of it, not even when it leaves")
}

// sixteen is a name of 16 letters and digits, the longest that the statement says every
// server must allow.
const sixteen = "Charlie123456789"

func checkPresence(r *Run) {
	alice, bob := aliceAndBob(r)
	charlie := connectUnnamed(r)
	charlie.Send(sixteen + "\n")
	expectEvent(charlie, "the list of users present", presenceHint+"; names of up to 16 "+
		"letters and digits must be allowed", "alice", "bob")
	expectEntered(sixteen, alice, bob)
	charlie.ExpectNothing(300*time.Millisecond,
		"a newcomer is not told of its own arrival: announce it to the others only")
}

func checkLeft(r *Run) {
	alice, bob := aliceAndBob(r)
	bob.Close()
	expectEvent(alice, "bob's departure", "when a joined user leaves, tell the others with a "+
		"line starting with \"*\" that names them (\"* bob has left the room\")", "bob")
}

func checkNotJoined(r *Run) {
	alice := join(r, "alice")
	lurker := connectUnnamed(r)
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
	alice.Send("Hi\n")
	expectMessage(bob, "[alice] Hi")
	bob.Close()
	expectEvent(alice, "bob's departure", "when a joined user leaves, tell the others", "bob")
	lurker.ExpectNothing(300*time.Millisecond,
		"a client that has not sent its name yet has not joined: send it no events and no messages")
}

func checkMessages(r *Run) {
	alice, bob := aliceAndBob(r)
	charlie := join(r, "charlie", "alice", "bob")
	expectEntered("charlie", alice, bob)
	alice.Send("Hello, everyone\n")
	for _, c := range []*Client{bob, charlie} {
		expectMessage(c, "[alice] Hello, everyone")
	}
	alice.ExpectNothing(300*time.Millisecond, echoHint)
}

// expectMessage reads a line that must be want, ended by "\n" or "\r\n".
func expectMessage(c *Client, want string) {
	line, err := c.ReadLine(Deadline)
	if err == nil && isLine(line, want) {
		return
	}
	hint := "relay each message to every other joined user, as \"[NAME] message\""
	if err != nil {
		hint = c.Name + " heard nothing: " + hint
	}
	c.run.Fail(fmt.Sprintf("%s to receive %s", c.Name, quote(want+"\n")), hint)
}

func checkLongMessage(r *Run) {
	alice, bob := aliceAndBob(r)
	message := strings.Repeat("0123456789", 100)
	bob.Send(message + "\n")
	expectMessage(alice, "[bob] "+message)
}

func checkResetBudget(r *Run) {
	alice, bob := aliceAndBob(r)
	bob.Reset()
	expectEvent(alice, "bob's departure", "a user whose connection was reset has left: tell "+
		"the others, and forget them (a write to them fails; that must not end the server)", "bob")
	carol := connectUnnamed(r)
	carol.Send("carol\n")
	list := expectEvent(carol, "the list of users present", "after a user vanished, the next "+
		"newcomer joins as usual: "+presenceHint, "alice")
	if strings.Contains(list, "bob") {
		r.Fail(fmt.Sprintf("%s's list of users present not to name bob, who left", carol.Name),
			"a user whose connection was reset is gone: remove them from the room when the "+
				"read or write fails")
	}
	expectEntered("carol", alice)
	carol.Send("hi\n")
	expectMessage(alice, "[carol] hi")
	alice.Send("hello\n")
	expectMessage(carol, "[alice] hello")
}

func checkTakenName(r *Run) {
	alice, bob := aliceAndBob(r)
	second := connectUnnamed(r)
	second.Send("alice\n")
	line, err := second.ReadLine(Deadline)
	refused := err != nil
	if !refused {
		// A line came: a refusal, if the connection closes now, or the list of users present.
		second.Conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := second.Reader.Peek(1); err != nil && !isTimeout(err) {
			refused = true
			second.run.say("[%s] the connection was closed by your server", second.Name)
		}
	}
	if refused {
		r.Note("taken name", "refused")
		if line != "" {
			r.Observe("A second alice was told %s and disconnected.", quote(line))
		} else {
			r.Observe("A second alice was disconnected without a word (allowed; a line saying why would help a person).")
		}
		bob.Send("still there?\n")
		expectMessage(alice, "[bob] still there?")
		alice.Send("yes\n")
		expectMessage(bob, "[alice] yes")
		return
	}
	r.Note("taken name", "allowed")
	if !strings.HasPrefix(line, "*") {
		r.Fail(fmt.Sprintf("%s, a second alice, either disconnected or told who is present", second.Name), presenceHint)
	}
	expectEntered("alice", alice, bob)
	hint := "with two users of the same name, both must keep hearing and being heard: keep " +
		"users apart by their connection, not by their name"
	bob.Send("hello both\n")
	for _, c := range []*Client{alice, second} {
		if line, err := c.ReadLine(Deadline); err != nil || !isLine(line, "[bob] hello both") {
			r.Fail(fmt.Sprintf("%s to receive %q", c.Name, "[bob] hello both"), hint)
		}
	}
	for _, from := range []*Client{alice, second} {
		from.Send("from " + from.Name + "\n")
		for _, to := range []*Client{bob, alice, second} {
			if to == from {
				continue
			}
			if line, err := to.ReadLine(Deadline); err != nil || !isLine(line, "[alice] from "+from.Name) {
				r.Fail(fmt.Sprintf("%s to receive %q", to.Name, "[alice] from "+from.Name), hint)
			}
		}
	}
	r.Observe("A second alice was let in, and both were heard: the statement allows it.")
}

func checkWholeBudget(r *Run) {
	alice, bob := aliceAndBob(r)
	carol := join(r, "carol", "alice", "bob")
	expectEntered("carol", alice, bob)
	wholeLinesBetween(r, alice, bob, carol, 1000, "[alice] ", "[bob] ")
}

// observeNotTextBudget sends a message that is not ASCII, and reports what became of it and of
// the room; it never fails.
func observeNotTextBudget(r *Run) {
	alice, bob := aliceAndBob(r)
	alice.Send(NotTextLine)
	alice.Send("plain\n")
	var seen []string
	for range 2 {
		line, err := bob.ReadLine(2 * time.Second)
		if err != nil {
			break
		}
		seen = append(seen, line)
		if isLine(line, "[alice] plain") {
			break
		}
	}
	if status := r.program.Exited(); status != "" {
		r.Observe("Your server ended (%s) on a message that is not ASCII. The statement does "+
			"not say what to do with such bytes, but one stray byte should not end the room.", status)
		return
	}
	switch {
	case len(seen) == 2 && isLine(seen[1], "[alice] plain"):
		r.Observe("The bytes that are not ASCII were relayed (as %s), and the room went on.", quote(seen[0]))
	case len(seen) == 1 && isLine(seen[0], "[alice] plain"):
		r.Observe("The message that is not ASCII was dropped, and the room went on.")
	default:
		r.Observe("After a message that is not ASCII, bob received %d lines, not alice's next message.", len(seen))
	}
}

func observeCommands(r *Run) {
	alice, bob := aliceAndBob(r)
	charlie := join(r, "charlie", "alice", "bob")
	expectEntered("charlie", alice, bob)

	var seen []string
	alice.Send("/msg bob psst\n")
	if line, err := bob.ReadLine(time.Second); err == nil && strings.Contains(line, "psst") {
		if _, err := charlie.ReadLine(300 * time.Millisecond); err != nil {
			seen = append(seen, "/msg reached bob alone")
			r.Note("msg", "private")
		}
	}
	alice.Send("/who\n")
	if line, err := alice.ReadLine(time.Second); err == nil &&
		strings.Contains(line, "alice") && strings.Contains(line, "bob") && strings.Contains(line, "charlie") {
		seen = append(seen, "/who listed everyone")
		r.Note("who", "listed")
	}
	if len(seen) == 0 {
		r.Observe("Neither /msg nor /who did what ours does; they are our additions, not Budget Chat's.")
		return
	}
	r.Observe("%s, as ours do.", strings.Join(seen, " and "))
}

// aliceAndBob joins alice, then bob, who is told that alice is present while she is told
// that he entered.
func aliceAndBob(r *Run) (alice, bob *Client) {
	alice = join(r, "alice")
	bob = join(r, "bob", "alice")
	expectEntered("bob", alice)
	return alice, bob
}
