package net

import (
	"errors"
	"fmt"
	stdnet "net"
	"time"
)

// Handler receives a connection's events. Every call for one connection
// happens on its loop, one at a time.
type Handler interface {
	// OnOpen is called once a connection is established: accepted by a
	// listener or connected by Dial.
	OnOpen(c Conn)
	// OnData is called with bytes read from c. in is the loop's read
	// buffer: it is valid only during the call, so copy what must outlive it.
	OnData(c Conn, in []byte)
	// OnClose is called once when c is gone: closed by either side, failed,
	// or never connected (err is then a *DialError). err is nil when the
	// handler closed c, io.EOF when the peer closed it, ErrEngineStopped at
	// shutdown.
	OnClose(c Conn, err error)
}

// Conn is one TCP connection. Its methods must be called on its loop.
type Conn interface {
	// Write appends b to the connection's output buffer (b is copied). The
	// buffer is flushed when the current callback returns, with one write
	// or writev for everything written during it; what the kernel does not
	// take stays buffered, in order, until the socket is writable again.
	Write(b []byte)
	// Pending is the number of bytes written but not yet sent.
	Pending() int
	// Close flushes pending output, then closes. OnClose follows with a nil error.
	Close()
	// Context returns what SetContext stored (or what was passed to Dial).
	Context() any
	SetContext(v any)
	// Loop is the loop the connection belongs to.
	Loop() Loop
	LocalAddr() stdnet.Addr
	RemoteAddr() stdnet.Addr
}

// Loop is one event loop.
type Loop interface {
	// Index is the loop's position, 0 to Loops-1: handlers keep per-loop
	// state (counters, histograms) in a slice indexed by it, without locks.
	Index() int
	// Trigger runs fn on the loop. It may be called from any goroutine;
	// wake-ups are coalesced, so a burst of triggers wakes the loop once.
	Trigger(fn func())
	// AfterFunc runs fn on the loop after d. Loop only.
	AfterFunc(d time.Duration, fn func()) *Timer
	// Now is the loop's monotonic clock, as time since the engine started.
	Now() time.Duration
	// Dial connects to addr from this loop without blocking it; the
	// result is OnOpen, or OnClose with a *DialError. Loop only: other
	// goroutines use Engine.Dial, or Trigger a function that calls Dial.
	Dial(addr *stdnet.TCPAddr, ctx any)
}

// ErrEngineStopped is the OnClose error of connections closed at shutdown.
var ErrEngineStopped = errors.New("engine stopped")

// ErrTimeout is wrapped in the *DialError of a connect that timed out.
var ErrTimeout = errors.New("timed out")

// DialError is the OnClose error of a connection that never connected.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("connect %s: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }
