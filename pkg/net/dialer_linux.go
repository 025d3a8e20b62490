//go:build linux

package net

import (
	stdnet "net"

	"golang.org/x/sys/unix"
)

// Dial connects to addr from this loop without blocking it: connect(2) on
// a non-blocking socket answers EINPROGRESS, the socket is registered for
// EPOLLOUT, and when it fires SO_ERROR says how the connect ended. The
// outcome is OnOpen, or OnClose with a *DialError. Loop only.
func (l *epollLoop) Dial(addr *stdnet.TCPAddr, ctx any) {
	sa, family := tcpToSockaddr(addr)
	c := &conn{l: l, fd: -1, rsa: sa, state: stateConnecting, ctx: ctx, dialAddr: addr.String()}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		l.closeConn(c, osErr("socket", err))
		return
	}
	c.fd = fd
	if l.opts.TCPNoDelay {
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	switch err {
	case nil:
		// Loopback connects can complete at once.
		if err := l.register(c, evRead); err != nil {
			l.closeConn(c, err)
			return
		}
		l.open(c)
	case unix.EINPROGRESS:
		if err := l.register(c, unix.EPOLLOUT); err != nil {
			l.closeConn(c, err)
			return
		}
		if l.opts.DialTimeout > 0 {
			c.dialTimer = l.AfterFunc(l.opts.DialTimeout, func() {
				c.dialTimer = nil
				l.closeConn(c, &DialError{Addr: c.dialAddr, Err: ErrTimeout})
			})
		}
	default:
		l.closeConn(c, osErr("connect", err))
	}
}

// finishConnect handles the EPOLLOUT (or EPOLLERR) that ends a connect.
func (l *epollLoop) finishConnect(c *conn, ev uint32) {
	soerr, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		l.closeConn(c, osErr("getsockopt SO_ERROR", err))
		return
	}
	if soerr != 0 {
		l.closeConn(c, osErr("connect", unix.Errno(soerr)))
		return
	}
	if ev&unix.EPOLLOUT == 0 {
		return // not writable yet and no error: still connecting
	}
	if c.dialTimer != nil {
		c.dialTimer.Stop()
		c.dialTimer = nil
	}
	if err := l.p.mod(c.fd, evRead, c.seq); err != nil {
		l.closeConn(c, err)
		return
	}
	l.open(c)
}

func (l *epollLoop) open(c *conn) {
	c.state = stateOpen
	l.stats.dialed.Add(1)
	l.h.OnOpen(c)
	l.flushDirty()
}
