//go:build linux || darwin

package main

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// The log guards the loop against its own standard output. A write to a terminal paused
// with Ctrl-S, or to a pipe whose reader stopped reading, blocks, and a loop that printed
// there itself would stop relaying, and even stop answering Ctrl-C, until the reader woke.
// So the loop only hands what a pass printed to a backlog, and a goroutine of its own does
// the writing. The backlog is bounded: when it is full, lines are dropped and counted.

// logBacklog is how much of the log may wait for standard output.
const logBacklog = 1 << 20

type logWriter struct {
	mu      sync.Mutex
	backlog []byte // lines the writer has not taken yet
	dropped int    // lines that did not fit in the backlog
	writing bool   // the writer is inside a write
	wake    chan struct{}
}

// startLog starts the goroutine that writes the log to w.
func startLog(w io.Writer) *logWriter {
	l := &logWriter{wake: make(chan struct{}, 1)}
	go l.write(w)
	return l
}

// handLog hands what this pass printed to the log writer, without waiting for it.
func (s *server) handLog() {
	if s.out.Len() == 0 {
		return
	}
	l := s.log
	l.mu.Lock()
	lines := s.out.Bytes()
	if room := logBacklog - len(l.backlog); len(lines) > room {
		keep := bytes.LastIndexByte(lines[:max(room, 0)], '\n') + 1 // whole lines only
		l.dropped += bytes.Count(lines[keep:], []byte{'\n'})
		lines = lines[:keep]
	}
	l.backlog = append(l.backlog, lines...)
	l.mu.Unlock()
	s.out.Reset()
	select {
	case l.wake <- struct{}{}:
	default: // already woken
	}
}

// write runs in its own goroutine: it may block in a write for as long as the reader likes.
func (l *logWriter) write(w io.Writer) {
	var lines []byte
	for range l.wake {
		l.mu.Lock()
		lines, l.backlog = l.backlog, lines[:0]
		dropped := l.dropped
		l.dropped, l.writing = 0, true
		l.mu.Unlock()
		w.Write(lines)
		if dropped > 0 {
			fmt.Fprintf(w, "Server: %d log lines dropped: standard output is not being read\n", dropped)
		}
		l.mu.Lock()
		l.writing = false
		l.mu.Unlock()
	}
}

// drain waits until everything handed to the log is written, or for at most d: a shutdown
// must not hang on a reader that went away.
func (l *logWriter) drain(d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		l.mu.Lock()
		done := len(l.backlog) == 0 && !l.writing
		l.mu.Unlock()
		if done {
			return
		}
	}
}

// printMessage prints a message as the article does, but with what is not printable text
// escaped: a control byte or a byte that is not UTF-8 as \xNN, any other character that is
// not printable (a right-to-left override, a zero-width space) as \uNNNN. A client must not
// drive the instructor's terminal with escape sequences, turn the text around, nor hide
// anything from the log. Other clients still get the bytes as they were sent. clients/receiver
// and clients/chat show messages by the same rule.
func (s *server) printMessage(sender *client, message []byte) {
	if s.options.quiet {
		return
	}
	s.out.WriteString("Server: received from " + sender.name + ": ")
	writePrintable(s.out, message)
	s.out.WriteByte('\n')
}

// writePrintable writes message to out as printMessage shows it; a refused name is shown so too.
func writePrintable(out *bytes.Buffer, message []byte) {
	for len(message) > 0 {
		r, size := utf8.DecodeRune(message)
		switch {
		case r == '\t' || unicode.IsPrint(r) && !(r == utf8.RuneError && size == 1):
			out.Write(message[:size])
		case size == 1: // a control byte, or a byte that is not UTF-8
			fmt.Fprintf(out, `\x%02x`, message[0])
		case r <= 0xffff:
			fmt.Fprintf(out, `\u%04x`, r)
		default:
			fmt.Fprintf(out, `\U%08x`, r)
		}
		message = message[size:]
	}
}
