package net

import (
	"runtime"
	"time"
)

// Engine names, as reported by Engine.Name and accepted by WithEngine.
const (
	EngineEpoll = "epoll" // Linux: epoll, eventfd, SO_REUSEPORT
	EngineGo    = "go"    // any OS: Go's net package, goroutines per connection
)

// Options configure an Engine. Build them with the With... functions; the
// zero value is never used directly: New starts from the defaults.
type Options struct {
	// Loops is the number of event loops (default GOMAXPROCS).
	Loops int
	// ReusePort gives each loop its own listening socket with SO_REUSEPORT
	// (default true); when false one socket is shared by every loop and
	// registered with EPOLLEXCLUSIVE, which wakes one loop per connection
	// nearly always ("one or more", says epoll(7)); SO_REUSEPORT always.
	ReusePort bool
	// ReadBufferSize is the size of each loop's read buffer, shared by all
	// of the loop's connections (default 64 KiB).
	ReadBufferSize int
	// LockOSThread pins each loop to its own OS thread (default true).
	LockOSThread bool
	// TCPNoDelay disables Nagle's algorithm on every connection (default
	// true): request/response traffic must not wait for an ACK.
	TCPNoDelay bool
	// Engine picks the implementation: "" for the platform's best
	// (EngineEpoll on Linux, EngineGo elsewhere), or EngineEpoll / EngineGo.
	Engine string
	// DialTimeout bounds a non-blocking connect (0: the kernel's own limit).
	DialTimeout time.Duration
	// Backlog is the listen(2) backlog (default 4096).
	Backlog int
	// TimerSlack lets a loop run timers up to this much before they are
	// due, together with an earlier one, instead of waking once for each
	// (default 0). A pacer sending 100,000 requests/s over 50 connections
	// wakes its loop 100,000 times a second without it, about ten times
	// less with 50 µs.
	TimerSlack time.Duration

	// evio re-enables evio's defects so that the regression tests can prove
	// they would catch them. Only tests in this package set it.
	evio evioFaults
}

// evioFaults are the defects of evio (v1.0.0-v1.0.5 and later, checked
// against its source) that pkg/net avoids.
type evioFaults struct {
	noDrain        bool // never read the eventfd, write it on every trigger
	sharedListener bool // one listener in every loop's epoll, level-triggered, no EPOLLEXCLUSIVE
	replaceOutput  bool // a write while output is pending replaces it (evio#72)
}

// Option sets one field of Options.
type Option func(*Options)

func newOptions(opts ...Option) Options {
	o := Options{
		Loops:          runtime.GOMAXPROCS(0),
		ReusePort:      true,
		ReadBufferSize: 64 << 10,
		LockOSThread:   true,
		TCPNoDelay:     true,
		Backlog:        4096,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Loops < 1 {
		o.Loops = 1
	}
	if o.ReadBufferSize < 512 {
		o.ReadBufferSize = 512
	}
	if o.Backlog < 1 {
		o.Backlog = 4096
	}
	return o
}

// WithLoops sets the number of event loops.
func WithLoops(n int) Option {
	return func(o *Options) { o.Loops = n }
}

// WithReusePort chooses one SO_REUSEPORT socket per loop (true) or one
// shared socket with EPOLLEXCLUSIVE (false).
func WithReusePort(v bool) Option {
	return func(o *Options) { o.ReusePort = v }
}

// WithReadBufferSize sets the size of each loop's read buffer.
func WithReadBufferSize(n int) Option {
	return func(o *Options) { o.ReadBufferSize = n }
}

// WithLockOSThread pins (true) or does not pin each loop to an OS thread.
func WithLockOSThread(v bool) Option {
	return func(o *Options) { o.LockOSThread = v }
}

// WithTCPNoDelay sets TCP_NODELAY on every connection.
func WithTCPNoDelay(v bool) Option {
	return func(o *Options) { o.TCPNoDelay = v }
}

// WithEngine picks the engine: EngineEpoll, EngineGo or "" for the default.
func WithEngine(name string) Option {
	return func(o *Options) { o.Engine = name }
}

// WithDialTimeout bounds each Dial; a connect that takes longer ends in
// OnClose with a *DialError wrapping ErrTimeout.
func WithDialTimeout(d time.Duration) Option {
	return func(o *Options) { o.DialTimeout = d }
}

// WithTimerSlack lets timers run up to d early, batched with earlier ones.
func WithTimerSlack(d time.Duration) Option {
	return func(o *Options) { o.TimerSlack = d }
}

// WithBacklog sets the listen(2) backlog.
func WithBacklog(n int) Option {
	return func(o *Options) { o.Backlog = n }
}
