package harness

import "github.com/go-chat-workshop/simple-chat-server/harness/tester"

// Machine describes this machine in one line, for the header of a benchmark's report.
func Machine() string { return tester.Machine() }
