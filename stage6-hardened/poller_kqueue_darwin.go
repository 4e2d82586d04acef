package main

import "golang.org/x/sys/unix"

const nativePollerName = "kqueue"

// kqueuePoller keeps the watched set in the kernel, as epoll does on Linux. It has a filter per
// direction, so a descriptor may be reported twice in one wait: once readable, once writable.
type kqueuePoller struct {
	kq    int
	ready []unix.Kevent_t
}

func newNativePoller() (poller, error) {
	kq, err := unix.Kqueue()
	return &kqueuePoller{kq: kq, ready: make([]unix.Kevent_t, 256)}, err
}

func (p *kqueuePoller) change(fd, filter int, watch bool) error {
	flags := unix.EV_DELETE
	if watch {
		flags = unix.EV_ADD
	}
	change := make([]unix.Kevent_t, 1)
	unix.SetKevent(&change[0], fd, filter, flags)
	_, err := unix.Kevent(p.kq, change, nil, nil)
	return err
}

func (p *kqueuePoller) add(fd int) error { return p.change(fd, unix.EVFILT_READ, true) }

func (p *kqueuePoller) watchWrites(fd int, watch bool) { p.change(fd, unix.EVFILT_WRITE, watch) }

func (p *kqueuePoller) watchReads(fd int, watch bool) { p.change(fd, unix.EVFILT_READ, watch) }

func (p *kqueuePoller) remove(fd int) {
	p.change(fd, unix.EVFILT_READ, false)  // fails harmlessly if not watched
	p.change(fd, unix.EVFILT_WRITE, false) // so does this
}

func (p *kqueuePoller) wait(timeout int) ([]event, error) {
	var limit *unix.Timespec // nil: no timeout
	if timeout >= 0 {
		t := unix.NsecToTimespec(int64(timeout) * 1e6)
		limit = &t
	}
	n, err := unix.Kevent(p.kq, nil, p.ready, limit)
	if err != nil {
		return nil, err
	}
	var events []event
	for _, e := range p.ready[:n] {
		readable, writable := e.Filter == unix.EVFILT_READ, e.Filter == unix.EVFILT_WRITE
		events = append(events, event{int(e.Ident), readable, writable})
	}
	return events, nil
}
