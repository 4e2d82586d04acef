//go:build linux || darwin

package harness

import (
	"fmt"
	"strings"
	"time"
)

// Stage 6 is Protohackers' Budget Chat: names, presence, and "[NAME] message". Events are
// matched as loosely as Protohackers' own checker matches them (a line that starts with "*"
// and names the user), so that a server's own wording passes; a message must be tagged
// exactly.

func stage6Checks() []Check {
	return []Check{
		{"prompt", "a line asking for a name as soon as a client connects", true, checkPrompt},
		{"illegal-name", "an illegal name gets a line and a disconnect", true, checkIllegalName},
		{"presence", "a newcomer is told who is present; the others, who came", true, checkPresence},
		{"left", "the others are told when a user leaves", true, checkLeft},
		{"not-joined", "no events or messages before joining", true, checkNotJoined},
		{"messages", `"[NAME] message" to every other user, not the sender`, true, checkMessages},
		{"long-message", "a 1000-character message", true, checkLongMessage},
		{"taken-name", "is a name that is taken rejected?", false, observeTakenName},
		{"commands", "our additions: /msg NAME text and /who", false, observeCommands},
	}
}

// budgetLine reads a line of a Budget Chat server and returns it without its "\n".
func budgetLine(c *CheckClient, what, hint string) string {
	line, err := c.ReadLine(Deadline)
	if err != nil {
		c.run.Fail(fmt.Sprintf("%s to receive %s", c.Name, what), c.run.exitHint(hint))
	}
	return strings.TrimSuffix(line, "\n")
}

// expectEvent reads a line that must start with "*" and name every one of names.
func expectEvent(c *CheckClient, what, hint string, names ...string) string {
	line := budgetLine(c, what, hint)
	text := strings.TrimSuffix(line, "\r")
	ok := strings.HasPrefix(text, "*")
	for _, name := range names {
		ok = ok && strings.Contains(text, name)
	}
	if !ok {
		c.run.Fail(fmt.Sprintf("%s to receive %s: a line starting with \"*\" that names %s",
			c.Name, what, strings.Join(names, " and ")), hint)
	}
	return line
}

const presenceHint = "right after a name is accepted, send the newcomer one line starting with " +
	"\"*\" that lists everyone already present (\"* The room contains: alice, bob\"), even " +
	"when nobody is (\"* The room is empty\")"

// connectUnnamed connects a client and reads the name prompt.
func connectUnnamed(r *CheckRun) *CheckClient {
	c := r.Client()
	line, err := c.ReadLine(3 * time.Second)
	if err != nil || strings.TrimSpace(line) == "" {
		r.Fail(c.Name+" to receive a line asking for its name", r.exitHint("send a line asking for a name as soon as a client connects"))
	}
	return c
}

// join connects a client, which answers the prompt with name and reads the presence line.
func join(r *CheckRun, name string, present ...string) *CheckClient {
	c := connectUnnamed(r)
	c.Send(name + "\n")
	expectEvent(c, "the list of users present", presenceHint, present...)
	return c
}

// expectEntered has every client in others read that name entered the room.
func expectEntered(name string, others ...*CheckClient) {
	for _, o := range others {
		expectEvent(o, name+"'s arrival", "when a user joins, tell every other joined user with "+
			"a line such as \"* "+name+" has entered the room\"", name)
	}
}

func checkPrompt(r *CheckRun) {
	c := r.Client()
	line := budgetLine(c, "a line asking for its name",
		"send a line asking for a name as soon as a client connects, before it says anything")
	if strings.TrimSpace(line) == "" {
		r.Fail("a line asking for a name", "the prompt is an empty line: ask for a name in words")
	}
}

func checkIllegalName(r *CheckRun) {
	alice := join(r, "alice")
	bad := connectUnnamed(r)
	bad.Send("not a name!\n")
	hint := "a name is 1 to 32 letters or digits: answer anything else with a line saying so, " +
		"and close the connection"
	budgetLine(bad, "a line saying why the name was refused", hint)
	bad.ExpectClosed(hint)
	alice.ExpectNothing(300*time.Millisecond,
		"a client that never joined must not be announced: nobody hears of it, not even when it leaves")
}

func checkPresence(r *CheckRun) {
	alice := join(r, "alice")
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
	charlie := join(r, "charlie", "alice", "bob")
	expectEntered("charlie", alice, bob)
	charlie.ExpectNothing(300*time.Millisecond,
		"a newcomer is not told of its own arrival: announce it to the others only")
}

func checkLeft(r *CheckRun) {
	alice := join(r, "alice")
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
	bob.Close()
	expectEvent(alice, "bob's departure", "when a joined user leaves, tell the others with a "+
		"line such as \"* bob has left the room\"", "bob")
}

func checkNotJoined(r *CheckRun) {
	alice := join(r, "alice")
	lurker := connectUnnamed(r)
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
	alice.Send("Hi\n")
	if got := budgetLine(bob, "alice's message", "relay each message to every other joined user"); got != "[alice] Hi" {
		r.Fail(fmt.Sprintf("%s to receive %q", bob.Name, "[alice] Hi\n"), "tag each message with its sender's name: \"[alice] Hi\"")
	}
	bob.Close()
	expectEvent(alice, "bob's departure", "when a joined user leaves, tell the others", "bob")
	lurker.ExpectNothing(300*time.Millisecond,
		"a client that has not sent its name yet has not joined: send it no events and no messages")
}

func checkMessages(r *CheckRun) {
	alice := join(r, "alice")
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
	charlie := join(r, "charlie", "alice", "bob")
	expectEntered("charlie", alice, bob)
	alice.Send("Hello, everyone\n")
	for _, c := range []*CheckClient{bob, charlie} {
		expectMessage(c, "[alice] Hello, everyone")
	}
	alice.ExpectNothing(300*time.Millisecond, echoHint)
}

// expectMessage reads a line that must be want, ended by "\n".
func expectMessage(c *CheckClient, want string) {
	line, err := c.ReadLine(Deadline)
	if err == nil && line == want+"\n" {
		return
	}
	hint := "relay each message to every other joined user, as \"[NAME] message\""
	switch {
	case err != nil:
		hint = c.run.exitHint(c.Name + " heard nothing: " + hint)
	case line == want+"\r\n":
		hint = "Budget Chat's lines end in \"\\n\" alone: a \"\\r\" before it becomes part of the message"
	}
	c.run.Fail(fmt.Sprintf("%s to receive %s", c.Name, quote(want+"\n")), hint)
}

func checkLongMessage(r *CheckRun) {
	alice := join(r, "alice")
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
	message := strings.Repeat("0123456789", 100)
	bob.Send(message + "\n")
	expectMessage(alice, "[bob] "+message)
}

func observeTakenName(r *CheckRun) {
	join(r, "alice")
	second := connectUnnamed(r)
	second.Send("alice\n")
	line, err := second.ReadLine(Deadline)
	if err != nil {
		r.Note("taken name", "closed")
		r.Observe("A second alice was disconnected without a word; a line saying why would help.")
		return
	}
	second.ExpectClosed("")
	r.Note("taken name", "rejected")
	r.Observe("A second alice was told %s and disconnected.", quote(line))
}

func observeCommands(r *CheckRun) {
	alice := join(r, "alice")
	bob := join(r, "bob", "alice")
	expectEntered("bob", alice)
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
