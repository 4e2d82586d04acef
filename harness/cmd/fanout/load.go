//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// A message on the wire is one line of exactly size bytes, "\r\n" included:
//
//	SSQQQQQQQQTTTTTTTTTTTTTTTT.....\r\n
//
// SS is the sender (hex; ff marks a sync line that only proves a receiver is registered),
// QQQQQQQQ the sender's sequence number and TTTTTTTTTTTTTTTT the time the message was
// scheduled, in nanoseconds since the run started (hex). Dots pad the line to its size. Fixed-size lines
// let the receiver find every message by arithmetic, so draining costs next to nothing.
const (
	fieldsSize   = 2 + 8 + 16
	minSize      = fieldsSize + 2
	syncSender   = 0xff
	channel      = "c" // the Redis channel every sender publishes to
	readBuffer   = 256 << 10
	maxSendBatch = 64 << 10
)

// workload says what one run of the generator does.
type workload struct {
	addr       string
	senderAddr string // where the senders connect, if not at addr (stage 8, across NATS)
	protocol   string // lineProtocol, or redisProtocol, natsProtocol, stage7Protocol
	receivers  int
	senders    int
	size       int           // bytes of one line, "\r\n" included
	rate       float64       // deliveries per second summed over receivers; 0 floods
	duration   time.Duration // how long senders send (unless messages is set)
	messages   int64         // if > 0, send exactly this many messages in all, then stop
	window     int           // flood: messages a receiver may lag behind the senders
	stall      time.Duration // give up when no delivery arrives for this long
	serverPID  int           // for the server's CPU time; 0 if unknown
	run        int64         // stage 7: the number in this run's names
}

// result is what a run measured.
type result struct {
	sent         int64 // messages
	expected     int64 // sent × receivers
	delivered    int64
	elapsed      time.Duration // first send until the last receiver had everything
	latency      histogram
	serverCPU    time.Duration
	generatorCPU time.Duration
	err          error
}

func (r *result) deliveriesPerSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.delivered) / r.elapsed.Seconds()
}

// generatorSaturated says the generator itself used (nearly) a whole core, so the
// deliveries per second it saw are a lower bound for what the server could do.
func (r *result) generatorSaturated() bool {
	return r.elapsed > 0 && float64(r.generatorCPU) >= 0.9*float64(r.elapsed)
}

// peer is one of the generator's connections.
type peer struct {
	fd       int
	index    int
	receiver bool

	// receiving
	preamble []byte   // bytes the server sends first that are not messages (Redis's subscribe reply)
	until    []byte   // NATS: everything up to and including these bytes (PONG) is not a message
	lineMode bool     // stage 7: skip presence lines ("* ...") line by line until the first sync line
	partial  []byte   // the start of a frame that straddles two reads
	next     []uint32 // next sequence number expected from each sender
	count    int64    // messages received
	synced   bool     // the server has shown that it relays to this receiver

	// sending
	out       []byte // bytes to send; out[written:] still waits for the socket
	written   int
	watchOut  bool   // registered for writability
	sentCount uint32 // messages this sender has built so far
}

// generator drives one workload: one epoll instance and one thread for every socket, so the
// receivers are drained by a single poller rather than N goroutines.
type generator struct {
	w        workload
	epoll    int
	timer    int // paced runs: a timerfd that wakes the loop to send what is due
	peers    map[int]*peer
	receive  []*peer
	send     []*peer
	buf      []byte
	events   []unix.EpollEvent
	start    time.Time
	frame    int    // bytes of one delivered message
	header   []byte // bytes of a delivered frame before the payload (Redis, NATS, stage 7)
	wildcard int    // a byte of header that may differ (stage 7: the sender's name), or -1
	trailer  []byte // bytes of a delivered frame after the payload
	publish  []byte // bytes a sender puts before each payload (Redis, NATS)
	sent     int64
	total    int64 // messages to send in all (paced or -messages), or -1 while flooding
	minCount int64 // the slowest receiver's count, as last computed
	result   result
	lastGot  time.Time
}

// run connects, waits until the server relays to every receiver, sends, and measures.
func run(w workload) (res result) {
	g := &generator{
		w:        w,
		epoll:    -1,
		timer:    -1,
		peers:    map[int]*peer{},
		buf:      make([]byte, readBuffer),
		events:   make([]unix.EpollEvent, 1024),
		total:    -1,
		wildcard: -1,
	}
	defer g.close()
	if err := g.setup(); err != nil {
		g.result.err = err
		return g.result
	}
	g.result.err = g.measure()
	g.result.sent = g.sent
	g.result.expected = g.sent * int64(w.receivers)
	return g.result
}

func (g *generator) setup() error {
	w := g.w
	if w.size < minSize {
		return fmt.Errorf("messages must be at least %d bytes", minSize)
	}
	payload := w.size - 2
	g.trailer = []byte("\r\n")
	switch w.protocol {
	case redisProtocol:
		g.header = []byte(fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n", len(channel), channel, payload))
		g.publish = []byte(fmt.Sprintf("*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n$%d\r\n", len(channel), channel, payload))
	case natsProtocol:
		g.header = []byte(fmt.Sprintf("MSG %s 1 %d\r\n", channel, payload))
		g.publish = []byte(fmt.Sprintf("PUB %s %d\r\n", channel, payload))
	case stage7Protocol:
		// "[s7x3] " before the line from sender 3 of run 7; lines end in "\n" alone.
		g.header, g.wildcard = g.stage7Header()
		g.trailer = []byte("\n")
		if w.senders > 16 {
			return fmt.Errorf("stage 7 runs take at most 16 senders")
		}
	}
	g.frame = len(g.header) + payload + len(g.trailer)
	var err error
	if g.epoll, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("epoll_create1: %w", err)
	}
	receivers, err := resolve(w.addr)
	if err != nil {
		return err
	}
	senders := receivers
	if w.senderAddr != "" {
		if senders, err = resolve(w.senderAddr); err != nil {
			return err
		}
	}
	for i := range w.receivers + w.senders {
		sockaddr := receivers
		if i >= w.receivers {
			sockaddr = senders
		}
		fd, err := connect(sockaddr)
		if err != nil {
			return fmt.Errorf("connection %d of %d: %w", i+1, w.receivers+w.senders, err)
		}
		p := &peer{fd: fd, receiver: i < w.receivers}
		g.peers[fd] = p
		if p.receiver {
			p.index = len(g.receive)
			p.next = make([]uint32, w.senders)
			g.receive = append(g.receive, p)
		} else {
			p.index = len(g.send)
			g.send = append(g.send, p)
		}
		if err := g.greet(p); err != nil {
			return err
		}
		if !p.receiver {
			// Paced runs send a message or two at a time: Nagle's algorithm would hold them.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		}
		if err := unix.EpollCtl(g.epoll, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
	}
	return nil
}

// measure runs the sync phase and then the workload itself.
func (g *generator) measure() error {
	w := g.w
	g.start = time.Now()
	if err := g.sync(); err != nil {
		return err
	}

	// The clock for latency starts again here, so that timestamps stay small.
	serverBefore := serverCPU(w.serverPID)
	ownBefore := ownCPU()
	g.start = time.Now()
	g.lastGot = g.start
	msgRate := w.rate / float64(w.receivers)
	if w.messages > 0 {
		g.total = w.messages
	} else if w.rate > 0 {
		g.total = int64(msgRate * w.duration.Seconds())
	}
	if w.rate > 0 {
		if err := g.startTimer(msgRate); err != nil {
			return err
		}
	}
	for {
		now := time.Since(g.start)
		sending := g.total < 0 || g.sent < g.total
		if sending && g.total < 0 && now >= w.duration {
			g.total = g.sent // a flood has sent for long enough
			sending = false
		}
		if !sending && g.allDelivered() {
			break
		}
		if time.Since(g.lastGot) > w.stall {
			return fmt.Errorf("stalled: no message arrived for %v; delivered %d of %d (slowest receiver has %d of %d)",
				w.stall, g.result.delivered, g.sent*int64(w.receivers), g.slowest(), g.sent)
		}
		busy := false
		if sending && w.rate == 0 {
			var err error
			if busy, err = g.flood(); err != nil {
				return err
			}
		}
		timeout := 100 // milliseconds; bounds the stall check, never the measurement
		if busy {
			timeout = 0
		}
		n, err := unix.EpollWait(g.epoll, g.events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, event := range g.events[:n] {
			fd := int(event.Fd)
			if fd == g.timer {
				if err := g.paced(msgRate); err != nil {
					return err
				}
				continue
			}
			if err := g.handle(event); err != nil {
				return err
			}
		}
	}
	g.result.elapsed = g.lastGot.Sub(g.start)
	g.result.generatorCPU = ownCPU() - ownBefore
	if w.serverPID > 0 {
		g.result.serverCPU = serverCPU(w.serverPID) - serverBefore
	}
	return nil
}

// handle reads from a peer that is readable and writes to one that has room.
func (g *generator) handle(event unix.EpollEvent) error {
	p := g.peers[int(event.Fd)]
	if event.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		if err := g.read(p); err != nil {
			return err
		}
	}
	if event.Events&unix.EPOLLOUT != 0 {
		return g.flush(p)
	}
	return nil
}

// sync makes sure the server relays to every receiver before anything is measured: the
// server may not have accepted a connection yet when connect returns. With Redis, the reply
// to SUBSCRIBE proves it; with the line protocol, sync lines from the first sender do.
func (g *generator) sync() error {
	deadline := time.Now().Add(syncTimeout)
	lastSync := time.Time{}
	for {
		synced := 0
		for _, p := range g.receive {
			if p.synced {
				synced++
			}
		}
		if synced == len(g.receive) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d receivers heard from the server within %v", synced, len(g.receive), syncTimeout)
		}
		if (g.w.protocol == lineProtocol || g.w.protocol == stage7Protocol) && time.Since(lastSync) > 5*time.Millisecond {
			lastSync = time.Now()
			line := g.message(syncSender, 0, 0)
			s := g.send[0]
			if !s.pending() { // a sync line still waiting to go out is enough
				s.out = append(s.out, line...)
				if err := g.flush(s); err != nil {
					return err
				}
			}
		}
		n, err := unix.EpollWait(g.epoll, g.events, 5)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, event := range g.events[:max(n, 0)] {
			if err := g.handle(event); err != nil {
				return err
			}
		}
	}
}

const syncTimeout = 10 * time.Second

// message builds one line (or, for Redis, one PUBLISH command) with the fields filled in.
func (g *generator) message(sender int, seq uint32, scheduled time.Duration) []byte {
	m := make([]byte, 0, len(g.publish)+g.w.size)
	return g.appendMessage(m, sender, seq, scheduled)
}

func (g *generator) appendMessage(m []byte, sender int, seq uint32, scheduled time.Duration) []byte {
	m = append(m, g.publish...)
	start := len(m)
	m = append(m, make([]byte, g.w.size)...)
	line := m[start:]
	putHex(line[0:2], uint64(sender))
	putHex(line[2:10], uint64(seq))
	putHex(line[10:26], uint64(max(scheduled, 0)))
	for i := fieldsSize; i < len(line)-2; i++ {
		line[i] = '.'
	}
	line[len(line)-2], line[len(line)-1] = '\r', '\n'
	return m
}

// flood tops up every sender whose socket is free, as far as the window allows. It reports
// whether there is more it could send right away (so the loop should not sleep).
func (g *generator) flood() (bool, error) {
	allowed := int64(g.w.window) - (g.sent - g.minCount)
	if allowed <= 0 {
		g.minCount = g.slowest()
		allowed = int64(g.w.window) - (g.sent - g.minCount)
	}
	perBatch := int64(maxSendBatch / (len(g.publish) + g.w.size))
	more := false
	for _, s := range g.send {
		if allowed <= 0 {
			return false, nil
		}
		if s.pending() {
			continue // the socket is full; writability will bring us back
		}
		if g.w.messages > 0 {
			allowed = min(allowed, g.w.messages-g.sent)
		}
		count := min(allowed, perBatch)
		now := time.Since(g.start)
		for range count {
			s.out = g.appendMessage(s.out, s.index, s.sentCount, now)
			s.sentCount++
		}
		g.sent += count
		allowed -= count
		if err := g.flush(s); err != nil {
			return false, err
		}
		if !s.pending() {
			more = true
		}
	}
	return more && allowed > 0 && (g.total < 0 || g.sent < g.total), nil
}

// startTimer arms a timerfd that wakes the loop as often as messages are due, but at most
// every 50 µs; each wake-up sends every message whose scheduled time has come.
func (g *generator) startTimer(msgRate float64) error {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("timerfd_create: %w", err)
	}
	g.timer = fd
	interval := max(time.Duration(float64(time.Second)/msgRate), 50*time.Microsecond)
	spec := unix.NsecToTimespec(int64(interval))
	if err := unix.TimerfdSettime(fd, 0, &unix.ItimerSpec{Interval: spec, Value: spec}, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	return unix.EpollCtl(g.epoll, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
}

// paced sends every message whose scheduled time has passed, each stamped with that time, so
// a late wake-up shows as latency instead of hiding it.
func (g *generator) paced(msgRate float64) error {
	var expirations [8]byte
	_, _ = unix.Read(g.timer, expirations[:])
	due := min(int64(time.Since(g.start).Seconds()*msgRate)+1, g.total)
	for ; g.sent < due; g.sent++ {
		s := g.send[g.sent%int64(len(g.send))]
		scheduled := time.Duration(float64(g.sent) / msgRate * float64(time.Second))
		s.out = g.appendMessage(s.out, s.index, s.sentCount, scheduled)
		s.sentCount++
	}
	for _, s := range g.send {
		if err := g.flush(s); err != nil {
			return err
		}
	}
	return nil
}

// flush writes what a sender has pending, watching for writability only while some is left.
func (g *generator) flush(p *peer) error {
	for p.written < len(p.out) {
		n, err := unix.Write(p.fd, p.out[p.written:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			return fmt.Errorf("sender %d: %w", p.index, err)
		}
		p.written += n
	}
	if p.written == len(p.out) {
		p.out, p.written = p.out[:0], 0 // keep the buffer for the next batch
	}
	want := p.pending()
	if want != p.watchOut {
		events := uint32(unix.EPOLLIN)
		if want {
			events |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(g.epoll, unix.EPOLL_CTL_MOD, p.fd, &unix.EpollEvent{Events: events, Fd: int32(p.fd)}); err != nil {
			return fmt.Errorf("epoll_ctl: %w", err)
		}
		p.watchOut = want
	}
	return nil
}

func (p *peer) pending() bool { return p.written < len(p.out) }

// read drains one ready socket. Senders' input (other senders' lines, Redis's replies to
// PUBLISH) is thrown away; receivers' is checked message by message.
func (g *generator) read(p *peer) error {
	n, err := unix.Read(p.fd, g.buf)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
		return nil
	}
	role := "sender"
	if p.receiver {
		role = "receiver"
	}
	if err != nil {
		return fmt.Errorf("%s %d: %w (the server dropped it?)", role, p.index, err)
	}
	if n == 0 {
		return fmt.Errorf("%s %d: the server closed the connection after %d messages", role, p.index, p.count)
	}
	if !p.receiver {
		return nil
	}
	now := time.Since(g.start)
	data := g.buf[:n]
	if p.until != nil || p.lineMode {
		var err error
		if data, err = g.skipPreamble(p, data, now); err != nil || data == nil {
			return err
		}
	}
	if len(p.preamble) > 0 {
		k := min(len(p.preamble), len(data))
		if !bytes.Equal(data[:k], p.preamble[:k]) {
			return fmt.Errorf("receiver %d: unexpected reply %q", p.index, data[:k])
		}
		p.preamble, data = p.preamble[k:], data[k:]
		if len(p.preamble) == 0 {
			p.synced = true
		}
	}
	if len(p.partial) > 0 {
		k := min(g.frame-len(p.partial), len(data))
		p.partial = append(p.partial, data[:k]...)
		data = data[k:]
		if len(p.partial) < g.frame {
			return nil
		}
		if err := g.deliver(p, p.partial, now); err != nil {
			return err
		}
		p.partial = p.partial[:0]
	}
	whole := len(data) - len(data)%g.frame
	if err := g.deliver(p, data[:whole], now); err != nil {
		return err
	}
	data = data[whole:]
	if len(data) > 0 {
		if p.partial == nil {
			p.partial = make([]byte, 0, g.frame)
		}
		p.partial = append(p.partial, data...)
	}
	return nil
}

// deliver checks received frames, all of them complete: their framing, their sender and that
// each is the next one from its sender (so a lost, repeated or reordered message fails the
// run), and records their latency. It is the generator's inner loop: at millions of
// deliveries a second it must cost a few nanoseconds a message.
func (g *generator) deliver(p *peer, frames []byte, now time.Duration) error {
	header := len(g.header)
	crlf := len(g.trailer) == 2
	delivered := int64(0)
	for ; len(frames) >= g.frame; frames = frames[g.frame:] {
		frame := frames[:g.frame]
		if frame[len(frame)-1] != '\n' || (crlf && frame[len(frame)-2] != '\r') || (header > 0 && !g.headerMatches(frame)) {
			return fmt.Errorf("receiver %d: malformed message %q", p.index, frame)
		}
		line := frame[header:]
		sender := int(hexValue[line[0]])<<4 | int(hexValue[line[1]])
		if sender == syncSender {
			p.synced = true
			continue
		}
		seq := uint32(parseHex8(line[2:10]))
		if sender >= len(p.next) || !p.synced || seq != p.next[sender] {
			if sender < len(p.next) && p.synced {
				return fmt.Errorf("receiver %d: message %d from sender %d arrived when %d was next (lost, repeated or reordered)",
					p.index, seq, sender, p.next[sender])
			}
			return fmt.Errorf("receiver %d: unexpected message %q", p.index, frame)
		}
		p.next[sender]++
		scheduled := parseHex8(line[10:18])<<32 | parseHex8(line[18:26])
		g.result.latency.record(now - time.Duration(scheduled))
		delivered++
	}
	if delivered > 0 {
		p.count += delivered
		g.result.delivered += delivered
		g.lastGot = g.start.Add(now)
	}
	return nil
}

func (g *generator) slowest() int64 {
	least := int64(-1)
	for _, p := range g.receive {
		if least < 0 || p.count < least {
			least = p.count
		}
	}
	return max(least, 0)
}

func (g *generator) allDelivered() bool {
	return g.result.delivered == g.sent*int64(g.w.receivers)
}

func (g *generator) close() {
	for fd := range g.peers {
		unix.Close(fd)
	}
	if g.timer >= 0 {
		unix.Close(g.timer)
	}
	if g.epoll >= 0 {
		unix.Close(g.epoll)
	}
}

// resolve turns "host:port" into a socket address; only IPv4 is needed here.
func resolve(addr string) (*unix.SockaddrInet4, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ip := net.ParseIP(host).To4()
	number, err := strconv.Atoi(port)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("%q is not an IPv4 address and port", addr)
	}
	sa := &unix.SockaddrInet4{Port: number}
	copy(sa.Addr[:], ip)
	return sa, nil
}

// connect opens a blocking connection (so that the handshake is done when it returns) and
// then makes it non-blocking for the poller.
func connect(sa *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for {
		err = unix.Connect(fd, sa)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func ownCPU() time.Duration {
	var usage unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &usage) != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&15]
		v >>= 4
	}
}

var hexValue = func() (table [256]byte) {
	for i := range table {
		table[i] = 0xff
	}
	for i := range 16 {
		table[hexDigits[i]] = byte(i)
	}
	return table
}()

// parseHex8 reads 8 lower-case hex digits at once, eight bytes in one register (SWAR): the
// low nibble of '0'..'9' is the digit, 'a'..'f' have bit 6 set and a low nibble 9 short of it.
// It does not validate: a corrupted message fails the sequence check instead.
func parseHex8(src []byte) uint64 {
	x := binary.BigEndian.Uint64(src)
	x = x&0x0f0f0f0f0f0f0f0f + 9*(x>>6&0x0101010101010101)
	x = (x | x>>4) & 0x00ff00ff00ff00ff
	x = (x | x>>8) & 0x0000ffff0000ffff
	return (x | x>>16) & 0xffffffff
}
