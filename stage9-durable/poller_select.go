//go:build linux || darwin

package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// selectPoller keeps the sets of descriptors to watch and hands copies of them to select(2),
// which every Unix has. Its sets are fixed arrays of FD_SETSIZE (1024) bits.
type selectPoller struct {
	readers, writers unix.FdSet // the descriptors we want to hear about
}

func (p *selectPoller) add(fd int) error {
	if fd >= unix.FD_SETSIZE {
		// FdSet.Set would panic past the array's end, and in C this would overwrite memory.
		return fmt.Errorf("descriptor %d is past select's limit of %d (FD_SETSIZE); try -poller %s",
			fd, unix.FD_SETSIZE, nativePollerName)
	}
	p.readers.Set(fd)
	return nil
}

func (p *selectPoller) watchWrites(fd int, watch bool) {
	if watch {
		p.writers.Set(fd)
	} else {
		p.writers.Clear(fd)
	}
}

func (p *selectPoller) watchReads(fd int, watch bool) {
	if watch {
		p.readers.Set(fd)
	} else {
		p.readers.Clear(fd)
	}
}

func (p *selectPoller) remove(fd int) {
	p.readers.Clear(fd)
	p.writers.Clear(fd)
}

func (p *selectPoller) wait(timeout int) ([]event, error) {
	// select overwrites the sets it is given with the ready ones, so give it fresh copies
	// every pass. A nil timeout means: sleep until something is ready. The first argument
	// is how many descriptors of the sets to look at: all of them.
	readable, writable := p.readers, p.writers
	var limit *unix.Timeval
	if timeout >= 0 {
		t := unix.NsecToTimeval(int64(timeout) * 1e6)
		limit = &t
	}
	if _, err := unix.Select(unix.FD_SETSIZE, &readable, &writable, nil, limit); err != nil {
		return nil, err
	}
	// The answer is bits, not a list: test every descriptor.
	var events []event
	for fd := range unix.FD_SETSIZE {
		if readable.IsSet(fd) || writable.IsSet(fd) {
			events = append(events, event{fd, readable.IsSet(fd), writable.IsSet(fd)})
		}
	}
	return events, nil
}
