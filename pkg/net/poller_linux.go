//go:build linux

package net

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller is one epoll instance with its wake-up eventfd.
type poller struct {
	epfd int
	efd  int // non-blocking eventfd; readable means "wake up"

	// pwait2 is cleared the first time epoll_pwait2 answers ENOSYS
	// (kernels before 5.11); epoll_wait's millisecond timeout is then
	// rounded up, so a timer never wakes the loop early into a spin.
	pwait2 atomic.Bool
}

// Event flags as the loop registers them. Connections are level-triggered:
// one read per event is enough (the next epoll_wait reports the rest), and
// EPOLLOUT is only in the set while output is pending.
const (
	evRead  = unix.EPOLLIN
	evWrite = unix.EPOLLOUT
)

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, osErr("epoll_create1", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, osErr("eventfd", err)
	}
	p := &poller{epfd: epfd, efd: efd}
	p.pwait2.Store(true)
	if err := p.add(efd, unix.EPOLLIN, 0); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *poller) close() {
	unix.Close(p.efd)
	unix.Close(p.epfd)
}

// The epoll data word carries the fd and a sequence number, so that an
// event queued for a connection that has since closed is not delivered to
// a new connection that reused its fd number in the same batch.
func (p *poller) del(fd int) error {
	return osErr("epoll_ctl", unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil))
}

func (p *poller) ctl(op, fd int, events uint32, seq uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(seq)}
	if err := unix.EpollCtl(p.epfd, op, fd, &ev); err != nil {
		return osErr("epoll_ctl", err)
	}
	return nil
}

func (p *poller) add(fd int, events uint32, seq uint32) error {
	return p.ctl(unix.EPOLL_CTL_ADD, fd, events, seq)
}

func (p *poller) mod(fd int, events uint32, seq uint32) error {
	return p.ctl(unix.EPOLL_CTL_MOD, fd, events, seq)
}

// wait blocks until events arrive, the eventfd is written, or timeout
// passes (timeout < 0: no limit).
func (p *poller) wait(events []unix.EpollEvent, timeout time.Duration) (int, error) {
	if timeout >= 0 && p.pwait2.Load() {
		ts := unix.NsecToTimespec(int64(timeout))
		n, _, errno := unix.Syscall6(unix.SYS_EPOLL_PWAIT2, uintptr(p.epfd),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)),
			uintptr(unsafe.Pointer(&ts)), 0, 0)
		if errno == 0 {
			return int(n), nil
		}
		if errno != unix.ENOSYS {
			return 0, errno
		}
		p.pwait2.Store(false)
	}
	msec := -1
	if timeout >= 0 {
		msec = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	return unix.EpollWait(p.epfd, events, msec)
}

// wake makes the loop's epoll_wait return. The caller has already made
// sure that no wake-up is pending (the loop's CAS flag), so this is one
// write per burst of triggers, not per trigger.
func (p *poller) wake() error {
	one := uint64(1)
	for {
		_, err := unix.Write(p.efd, (*[8]byte)(unsafe.Pointer(&one))[:])
		switch err {
		case nil, unix.EAGAIN:
			// EAGAIN: the counter is saturated, so the loop is awake anyway.
			return nil
		case unix.EINTR:
			continue
		}
		return osErr("eventfd write", err)
	}
}

// drain reads the eventfd, resetting it to zero: until the next wake it is
// no longer readable and epoll_wait blocks again (evio v1.0.0-v1.0.5 never
// read it, so the loop spun at 100% CPU after the first wake, evio#61).
func (p *poller) drain() {
	var buf [8]byte
	for {
		_, err := unix.Read(p.efd, buf[:])
		if err != unix.EINTR {
			return
		}
	}
}
