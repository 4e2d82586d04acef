package tester

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (CPUTicks). The kernel
// reports it to user space as 100 on every architecture Linux supports, whatever its HZ.
const clockTicks = 100

// ProcReadable reports whether this system lets a running process's CPU time, memory and
// descriptors be read (Linux's /proc). Elsewhere the checks of CPU say that they were not
// measured.
const ProcReadable = true

// CPUTime is the CPU time the process pid has used so far, to the nanosecond: the time its
// threads have run on a CPU, from /proc/<pid>/task/*/schedstat. (The user and system times of
// /proc/<pid>/stat come in 10 ms ticks: telling 1% of a core from 2% with them takes a window
// of seconds, where nanoseconds tell it in a fraction of one. A thread that has ended takes
// its time with it, which only makes a figure smaller: a spinning loop does not end.)
func CPUTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no threads of process %d in /proc", pid)
	}
	var ran int64
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended meanwhile
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected %s: %q", task, data)
		}
		ran += ns
	}
	return time.Duration(ran), nil
}

// CPUTicks is the user plus system CPU time of process pid in the clock ticks of
// /proc/<pid>/stat, for claims such as "zero ticks while idle".
func CPUTicks(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	fields, err := statFields(path)
	if err != nil {
		return 0, err
	}
	// utime (field 14) and stime (15).
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected %s: %q", path, fields)
	}
	return utime + stime, nil
}

// statFields reads a process's /proc/<pid>/stat at path and returns its fields from the third
// on (state, ppid, pgrp...): the command name (field 2) is in parentheses and may hold spaces,
// so they are counted from the last ')'.
func statFields(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := string(data)
	end := strings.LastIndexByte(text, ')')
	if fields := strings.Fields(text[end+1:]); end >= 0 && len(fields) >= 13 {
		return fields, nil
	}
	return nil, fmt.Errorf("unexpected %s: %q", path, text)
}

// RSS is the resident memory of the process pid in bytes (VmRSS, as ReadMemory reads it).
func RSS(pid int) (int64, error) {
	m, err := ReadMemory(pid)
	return m.RSS, err
}

// Memory is what /proc/<pid>/status says about a process's resident memory, in bytes.
type Memory struct {
	RSS  int64 // VmRSS: resident now
	Peak int64 // VmHWM: the most it has ever been resident (the "high water mark")
}

// ReadMemory reads VmRSS and VmHWM from /proc/<pid>/status.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	found := 0
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(value), "kB")), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("unexpected %s line in /proc/%d/status: %q", name, pid, line)
		}
		if name == "VmRSS" {
			m.RSS = kb * 1024
		} else {
			m.Peak = kb * 1024
		}
		found++
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("no VmRSS or VmHWM in /proc/%d/status", pid)
	}
	return m, nil
}

// Descriptors counts a process's open file descriptors.
type Descriptors struct {
	All     int // every entry of /proc/<pid>/fd
	Sockets int // those that are sockets: the listener and the connections
}

// OpenDescriptors counts the process's open file descriptors, from /proc/<pid>/fd. Sockets are
// counted apart: the Go runtime may open descriptors of its own (its poller's) at any time,
// but only the server opens sockets.
func OpenDescriptors(pid int) (Descriptors, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Descriptors{}, err
	}
	d := Descriptors{All: len(entries)}
	for _, e := range entries {
		// A descriptor closed since ReadDir has no link any more: not counted.
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			d.Sockets++
		}
	}
	return d, nil
}

// Machine describes this machine in one line, for the header of a benchmark's report: the CPU
// model, the number of CPUs, the system and kernel, and the Go version.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				model = strings.TrimSpace(value)
				break
			}
		}
	}
	release := "?"
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s, Linux %s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, release, runtime.Version())
}

// LoadAverage is the machine's load average over the last 1, 5 and 15 minutes, from
// /proc/loadavg, or "unknown": how busy the machine was, beside a benchmark's figures.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if fields := strings.Fields(string(data)); err == nil && len(fields) >= 3 {
		return strings.Join(fields[:3], " ")
	}
	return "unknown"
}

// groupProcesses calls f with the pid and the fields of /proc/<pid>/stat after the command
// name (state first) of every process in process group pgid that has not ended.
func groupProcesses(pgid int, f func(pid int, fields []string)) {
	// The names in /proc, read directly: filepath.Glob would also stat every stat file, and
	// sort them, six times the cost of a scan that the tester makes at every start and stop.
	dir, err := os.Open("/proc")
	if err != nil {
		return
	}
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	group := strconv.Itoa(pgid)
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue // not a process
		}
		fields, err := statFields("/proc/" + name + "/stat")
		// fields[0] is field 3 (state), fields[2] field 5 (pgrp). A process that ended
		// meanwhile has no file any more.
		if err != nil || fields[2] != group || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		f(pid, fields)
	}
}

// groupAlive reports whether any process of group pgid still runs (zombies do not count: in
// a container nobody may ever reap them).
func groupAlive(pgid int) bool {
	if unix.Kill(-pgid, 0) == unix.ESRCH {
		return false // not even a zombie: no need to read every process's stat
	}
	alive := false
	groupProcesses(pgid, func(int, []string) { alive = true })
	return alive
}

// GroupCPUTime is the CPU time used so far by every process in group pgid, as CPUTime counts
// it.
func GroupCPUTime(pgid int) (time.Duration, error) {
	var ran time.Duration
	groupProcesses(pgid, func(pid int, _ []string) {
		if used, err := CPUTime(pid); err == nil {
			ran += used
		}
	})
	return ran, nil
}

// acceptQueue returns how many connections to port wait in its listening socket's accept
// queue, not yet accepted by the server. ok is false if no listening socket on port is found.
func acceptQueue(port int) (waiting int, ok bool) {
	for _, l := range listeningSockets() {
		if l.port == port {
			waiting += l.waiting
			ok = true
		}
	}
	return waiting, ok
}

// listening is a TCP socket in the LISTEN state: its port, how many connections wait in its
// accept queue, and its inode, which names it among a process's descriptors.
type listening struct {
	port, waiting int
	inode         string
}

// listeningSockets asks the kernel for its TCP sockets in the LISTEN state, IPv4 and IPv6,
// over sock_diag netlink. /proc/net/tcp would say the same, but it lists every socket: after
// a test run, thousands in TIME_WAIT, 20 ms of the kernel's time per read, and the tester
// reads it every millisecond while it waits for an accept. None if the kernel does not answer.
func listeningSockets() []listening {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_INET_DIAG)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var found []listening
	for _, family := range []byte{unix.AF_INET, unix.AF_INET6} {
		// A netlink header (16 bytes), then struct inet_diag_req_v2 (56): the family, TCP, no
		// extensions, and the states wanted as a bit mask; the socket id left zero matches all.
		req := make([]byte, 16+56)
		binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
		binary.NativeEndian.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
		binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
		req[16], req[17] = family, unix.IPPROTO_TCP
		binary.NativeEndian.PutUint32(req[20:], 1<<tcpListen)
		if unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}) != nil {
			return nil
		}
		buf := make([]byte, 64<<10)
	reading:
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return nil
			}
			messages, err := syscall.ParseNetlinkMessage(buf[:n])
			if err != nil {
				return nil
			}
			for _, m := range messages {
				switch {
				case m.Header.Type == unix.NLMSG_DONE:
					break reading
				case m.Header.Type == unix.NLMSG_ERROR:
					return nil
				case len(m.Data) >= 72:
					// struct inet_diag_msg: the source port at 4 (network order), the accept
					// queue of a listening socket at 56 (idiag_rqueue), the inode at 68.
					found = append(found, listening{
						port:    int(binary.BigEndian.Uint16(m.Data[4:])),
						waiting: int(binary.NativeEndian.Uint32(m.Data[56:])),
						inode:   strconv.FormatUint(uint64(binary.NativeEndian.Uint32(m.Data[68:])), 10),
					})
				}
			}
		}
	}
	return found
}

// tcpListen is TCP_LISTEN in the kernel's numbering of TCP states.
const tcpListen = 10

// groupListens returns the TCP ports on which the processes of group pgid listen: the
// listening sockets among their descriptors.
func groupListens(pgid int) []int {
	inodes := map[string]bool{}
	groupProcesses(pgid, func(pid int, _ []string) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fd)
			if inode, ok := strings.CutPrefix(target, "socket:["); err == nil && ok {
				inodes[strings.TrimSuffix(inode, "]")] = true
			}
		}
	})
	var ports []int
	for _, l := range listeningSockets() {
		if inodes[l.inode] && !slices.Contains(ports, l.port) {
			ports = append(ports, l.port)
		}
	}
	return ports
}
