// Package tester checks a chat server from outside, whoever wrote it and in whatever
// language: it starts the server, connects clients, reads what the server prints, measures
// its CPU, and judges each stage's lesson. `go run ./harness/cmd/check` runs it against
// anybody's server, and the tests of package harness run the very same checks against the
// workshop's own stages. It imports no test framework.
//
// The map:
//
//   - process.go: Command, the one way this repository starts and watches a program (its
//     output on a pseudo-terminal or a pipe, its process group, its stop and its CPU), and
//     Lines, the one waiter for a program's output lines.
//   - program.go: Program, somebody's server as the checks start, stop and restart it.
//   - check.go: a check's run and Client, the one client type, which the tests of package
//     harness use too (TestClient); report.go: a result as the command prints it.
//   - stages.go: the table of every check of every stage (checks: its name, its stages, what
//     it requires and what is only ours), and the checks of stages 1 to 5; stage6.go: those
//     of stage 6 (a room you do not trust); stage7.go: those of stage 7 (Budget Chat);
//     style.go: how a check looks past a server's house style.
//   - proc_linux.go: the one /proc reader (CPU time, memory, descriptors, a process group,
//     the accept queue); cpu.go: the one CPU meter.
//   - terminal_unix.go: opening a pseudo-terminal, the same on Linux and macOS but for how
//     each names and unlocks its second side (terminal_linux.go, terminal_darwin.go).
//   - process_unix.go, group_darwin.go, probe_*.go: process groups and port probes, where
//     Linux and macOS differ; process_other.go and proc_other.go: what stands in for them
//     (and for /proc) elsewhere, so that the module builds on Windows.
//   - flood.go: the numbered lines of a flood and the one writer that sends them, which the
//     tests of our stages and the soak command use too; wrap.go: the one word-wrapper.
package tester
