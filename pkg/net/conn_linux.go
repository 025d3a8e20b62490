//go:build linux

package net

import (
	"io"
	stdnet "net"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	stateConnecting uint8 = iota
	stateOpen
	stateClosed
)

// conn is a connection on an epoll loop.
type conn struct {
	l        *epollLoop
	fd       int
	seq      uint32
	state    uint8
	outArmed bool // EPOLLOUT is in the registered set
	dirty    bool // queued in l.dirty
	closeReq bool // Close was called; close once output is sent
	out      outBuffer
	ctx      any

	lsa, rsa   unix.Sockaddr
	dialAddr   string
	dialTimer  *Timer
	readClosed bool // EPOLLIN removed while a Close drains output
}

func (c *conn) Loop() Loop       { return c.l }
func (c *conn) Context() any     { return c.ctx }
func (c *conn) SetContext(v any) { c.ctx = v }
func (c *conn) Pending() int     { return c.out.Len() }
func (c *conn) LocalAddr() stdnet.Addr {
	if c.lsa == nil {
		c.lsa, _ = unix.Getsockname(c.fd)
	}
	return sockaddrToTCP(c.lsa)
}
func (c *conn) RemoteAddr() stdnet.Addr { return sockaddrToTCP(c.rsa) }

func (c *conn) Write(b []byte) {
	if c.state == stateClosed || c.closeReq || len(b) == 0 {
		return
	}
	if c.l.opts.evio.replaceOutput && c.out.Len() > 0 {
		c.out.reset(&c.l.pool)
	}
	c.out.write(&c.l.pool, b)
	c.l.markDirty(c)
}

func (c *conn) Close() {
	if c.state == stateClosed || c.closeReq {
		return
	}
	c.closeReq = true
	c.l.markDirty(c)
}

// connEvent handles readiness of a connection.
func (l *epollLoop) connEvent(c *conn, ev uint32) {
	if c.state == stateConnecting {
		l.finishConnect(c, ev)
		return
	}
	if ev&unix.EPOLLOUT != 0 && c.out.Len() > 0 {
		l.flush(c)
		if c.state == stateClosed {
			return
		}
	}
	if c.readClosed {
		if ev&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.closeConn(c, nil)
		}
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.read(c)
	}
}

// read does one read per readiness event: the registration is
// level-triggered, so whatever remains is reported by the next epoll_wait
// and one busy connection cannot starve the others.
func (l *epollLoop) read(c *conn) {
	n, err := rawRead(c.fd, l.buf)
	switch {
	case n > 0:
		l.stats.bytesRead.Add(uint64(n))
		l.h.OnData(c, l.buf[:n])
		l.flushDirty()
	case n == 0 && err == nil:
		l.closeConn(c, io.EOF)
	case err == unix.EAGAIN || err == unix.EINTR:
	default:
		l.closeConn(c, osErr("read", err))
	}
}

// flush sends pending output: write for one chunk, writev for several.
// A short write means the socket buffer is full, so it stops there and
// arms EPOLLOUT instead of trying again into an EAGAIN.
func (l *epollLoop) flush(c *conn) {
	for c.out.Len() > 0 {
		l.iov = c.out.peek(l.iov[:0], maxIov)
		want := 0
		for _, b := range l.iov {
			want += len(b)
		}
		var n int
		var err error
		if len(l.iov) == 1 {
			n, err = rawWrite(c.fd, l.iov[0])
		} else {
			n, err = l.writev(c.fd, l.iov)
		}
		clear(l.iov)
		if n > 0 {
			c.out.discard(&l.pool, n)
			l.stats.bytesWritten.Add(uint64(n))
		}
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				break
			}
			l.closeConn(c, osErr("write", err))
			return
		}
		if n < want {
			break
		}
	}
	switch {
	case c.out.Len() > 0 && !c.outArmed:
		c.outArmed = true
		l.rearm(c)
	case c.out.Len() == 0 && c.outArmed:
		c.outArmed = false
		l.rearm(c)
	}
	if c.closeReq {
		if c.out.Len() == 0 {
			l.closeConn(c, nil)
		} else if !c.readClosed {
			// Closing: stop reading (level-triggered EPOLLIN would fire
			// forever on unread input) and wait for EPOLLOUT to drain.
			c.readClosed = true
			l.rearm(c)
		}
	}
}

// rearm registers the event set the connection's state calls for.
func (l *epollLoop) rearm(c *conn) {
	var ev uint32
	if !c.readClosed {
		ev |= evRead
	}
	if c.outArmed {
		ev |= evWrite
	}
	if err := l.p.mod(c.fd, ev, c.seq); err != nil {
		l.closeConn(c, err)
	}
}

// closeConn closes c's socket and calls OnClose once. close(2) also
// removes the fd from the epoll set, so there is no EPOLL_CTL_DEL.
func (l *epollLoop) closeConn(c *conn, err error) {
	if c.state == stateClosed {
		return
	}
	wasConnecting := c.state == stateConnecting
	c.state = stateClosed
	if c.dialTimer != nil {
		c.dialTimer.Stop()
		c.dialTimer = nil
	}
	if c.fd >= 0 {
		if c.fd < len(l.conns) && l.conns[c.fd] == c {
			l.conns[c.fd] = nil
			l.nconns--
			l.stats.conns.Add(-1)
		}
		unix.Close(c.fd)
		c.fd = -1
	}
	c.out.reset(&l.pool)
	if wasConnecting && err != nil {
		if _, ok := err.(*DialError); !ok {
			err = &DialError{Addr: c.dialAddr, Err: err}
		}
	}
	l.h.OnClose(c, err)
}

// rawRead and rawWrite are read(2) and write(2) without the runtime's
// syscall bookkeeping: the sockets are non-blocking, so the calls cannot
// block the thread, and a request/response round trip makes two of them.
func rawRead(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func (l *epollLoop) writev(fd int, bufs [][]byte) (int, error) {
	l.iovecs = l.iovecs[:0]
	for _, b := range bufs {
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		l.iovecs = append(l.iovecs, v)
	}
	r, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&l.iovecs[0])), uintptr(len(l.iovecs)))
	clear(l.iovecs)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func sockaddrToTCP(sa unix.Sockaddr) stdnet.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &stdnet.TCPAddr{IP: append(stdnet.IP(nil), a.Addr[:]...), Port: a.Port}
	case *unix.SockaddrInet6:
		return &stdnet.TCPAddr{IP: append(stdnet.IP(nil), a.Addr[:]...), Port: a.Port}
	}
	return nil
}
