//go:build linux

package net

import (
	"fmt"
	stdnet "net"
	"time"

	"golang.org/x/sys/unix"
)

// listenSocket is a listening socket as one loop sees it.
type listenSocket struct {
	fd     int
	shared bool // one socket in every loop (EPOLLEXCLUSIVE); closed by the engine
	paused bool // accept hit EMFILE; re-armed by a timer
}

// listen opens the listening sockets for addr: one SO_REUSEPORT socket per
// loop, so the kernel hands each new connection to exactly one socket and
// wakes exactly one loop; or, without ReusePort, one socket that every loop
// registers with EPOLLEXCLUSIVE, which wakes one loop per connection nearly
// always (epoll(7): "one or more"), and sends most connections to the same
// loop, the first waiter; hence SO_REUSEPORT by default.
// evio registered one socket in every loop's epoll, level-triggered, so
// every connection woke every loop and all but one accept failed (the
// thundering herd).
func (e *epollEngine) listen(network, address string) (stdnet.Addr, error) {
	sa, family, err := resolveSockaddr(network, address)
	if err != nil {
		return nil, err
	}
	reuse := e.opts.ReusePort && !e.opts.evio.sharedListener
	n := 1
	if reuse {
		n = len(e.loops)
	}
	if reuse && sockaddrPort(sa) != 0 {
		// SO_REUSEPORT would let these sockets join another process's
		// listener on the same port (same user), silently sharing its
		// traffic. A socket without it cannot bind a port someone listens
		// on: bind one first, as a probe.
		if err := probeBind(family, sa); err != nil {
			return nil, fmt.Errorf("listen %s: %w", address, err)
		}
	}
	fds := make([]int, 0, n)
	fail := func(err error) (stdnet.Addr, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	for i := 0; i < n; i++ {
		fd, err := listenSocketFD(family, sa, reuse, e.opts.Backlog)
		if err != nil {
			return fail(fmt.Errorf("listen %s: %w", address, err))
		}
		fds = append(fds, fd)
		if i == 0 {
			// Port 0: the first bind picks the port; the others join it.
			bound, err := unix.Getsockname(fd)
			if err != nil {
				return fail(osErr("getsockname", err))
			}
			sa = bound
		}
	}
	events := uint32(unix.EPOLLIN)
	if !reuse && !e.opts.evio.sharedListener {
		events |= unix.EPOLLEXCLUSIVE
	}
	for i, l := range e.loops {
		ln := &listenSocket{fd: fds[0], shared: !reuse}
		if reuse {
			ln.fd = fds[i]
		}
		var regErr error
		e.exec(l, func() {
			if regErr = l.p.add(ln.fd, events, 0); regErr == nil {
				l.lns = append(l.lns, ln)
			}
		})
		if regErr != nil {
			return fail(regErr)
		}
	}
	if !reuse {
		e.mu.Lock()
		e.shared = append(e.shared, fds[0])
		e.mu.Unlock()
	}
	return sockaddrToTCP(sa), nil
}

func sockaddrPort(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}

// probeBind binds a socket without SO_REUSEPORT to sa and closes it: it
// fails with EADDRINUSE when another socket listens there.
func probeBind(family int, sa unix.Sockaddr) error {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return osErr("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return osErr("setsockopt SO_REUSEADDR", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return osErr("bind", err)
	}
	return nil
}

func listenSocketFD(family int, sa unix.Sockaddr, reusePort bool, backlog int) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, osErr("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return -1, osErr("setsockopt SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			unix.Close(fd)
			return -1, osErr("setsockopt SO_REUSEPORT", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, osErr("bind", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return -1, osErr("listen", err)
	}
	return fd, nil
}

// accept takes one connection per readiness event; the listener is
// level-triggered, so a backlog is worked off over the next iterations,
// between the other connections' events.
func (l *epollLoop) accept(ln *listenSocket) {
	l.stats.listenerWakeups.Add(1)
	nfd, rsa, err := unix.Accept4(ln.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		switch err {
		case unix.EAGAIN:
			// Another loop took it: the wake-up was for nothing.
			l.stats.acceptEmpty.Add(1)
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			// Out of descriptors: the socket stays readable, and a
			// level-triggered registration would spin. Pause it.
			l.pauseListener(ln)
		}
		return
	}
	l.stats.accepted.Add(1)
	if l.opts.TCPNoDelay {
		unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	c := &conn{l: l, fd: nfd, rsa: rsa, state: stateOpen}
	if err := l.register(c, evRead); err != nil {
		unix.Close(nfd)
		return
	}
	l.h.OnOpen(c)
	l.flushDirty()
}

func (l *epollLoop) pauseListener(ln *listenSocket) {
	if ln.paused {
		return
	}
	ln.paused = true
	exclusive := ln.shared && !l.opts.evio.sharedListener
	if exclusive {
		// EPOLL_CTL_MOD refuses an EPOLLEXCLUSIVE registration: remove it
		// and register it anew.
		l.p.del(ln.fd)
	} else {
		l.p.mod(ln.fd, 0, 0)
	}
	l.AfterFunc(10*time.Millisecond, func() {
		ln.paused = false
		if exclusive {
			l.p.add(ln.fd, unix.EPOLLIN|unix.EPOLLEXCLUSIVE, 0)
			return
		}
		l.p.mod(ln.fd, unix.EPOLLIN, 0)
	})
}

// resolveSockaddr turns "host:port" into a socket address. Names are
// resolved here, by the caller, never on a loop.
func resolveSockaddr(network, address string) (unix.Sockaddr, int, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, 0, fmt.Errorf("network %q: only tcp, tcp4 and tcp6", network)
	}
	a, err := stdnet.ResolveTCPAddr(network, address)
	if err != nil {
		return nil, 0, err
	}
	sa, family := tcpToSockaddr(a)
	return sa, family, nil
}

func tcpToSockaddr(a *stdnet.TCPAddr) (unix.Sockaddr, int) {
	if ip4 := a.IP.To4(); ip4 != nil || a.IP == nil {
		sa := &unix.SockaddrInet4{Port: a.Port}
		if ip4 != nil {
			copy(sa.Addr[:], ip4)
		}
		return sa, unix.AF_INET
	}
	sa := &unix.SockaddrInet6{Port: a.Port}
	copy(sa.Addr[:], a.IP.To16())
	return sa, unix.AF_INET6
}
