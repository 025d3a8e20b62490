package net

import (
	"context"
	"errors"
	"io"
	stdnet "net"
	"sync"
	"sync/atomic"
	"time"
)

// The portable engine: Go's net package underneath (a reader goroutine per
// connection, a writer goroutine per flush), with the same loop model on
// top. Each loop is a goroutine that runs every callback of its
// connections, its timers and its triggered functions, one at a time, so a
// Handler cannot tell the engines apart, except by speed.

type goEngine struct {
	h    Handler
	opts Options
	base time.Time
	loopSet[*goLoop]

	stopped atomic.Bool
	next    atomic.Uint32 // round-robin for accepted connections

	mu  sync.Mutex
	lns []stdnet.Listener
	wg  sync.WaitGroup // accept and writer goroutines
}

func newGoEngine(h Handler, o Options) (engine, error) {
	e := &goEngine{h: h, opts: o, base: time.Now()}
	for i := 0; i < o.Loops; i++ {
		l := &goLoop{idx: i, eng: e, wake: make(chan struct{}, 1), done: make(chan struct{}), conns: map[*goConn]struct{}{}}
		l.timers.now = func() int64 { return int64(time.Since(e.base)) }
		e.loops = append(e.loops, l)
	}
	return e, nil
}

func (e *goEngine) name() string { return EngineGo }

func (e *goEngine) listen(network, addr string) (stdnet.Addr, error) {
	ln, err := stdnet.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.lns = append(e.lns, ln)
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				if ne, ok := err.(stdnet.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
			l := e.loops[int(e.next.Add(1)-1)%len(e.loops)]
			l.stats.listenerWakeups.Add(1)
			l.Trigger(func() {
				l.stats.accepted.Add(1)
				l.open(nc, nil)
			})
		}
	}()
	return ln.Addr(), nil
}

func (e *goEngine) stop(ctx context.Context) error {
	if e.stopped.Swap(true) {
		return nil
	}
	e.mu.Lock()
	for _, ln := range e.lns {
		ln.Close()
	}
	e.mu.Unlock()
	if !e.started.Load() {
		e.start()
	}
	for _, l := range e.loops {
		l.Trigger(func() { l.stop = true })
	}
	for _, l := range e.loops {
		select {
		case <-l.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.wg.Wait()
	return nil
}

func (l *goLoop) counters() *loopCounters { return &l.stats }

type goLoop struct {
	idx    int
	eng    *goEngine
	timers timerHeap
	conns  map[*goConn]struct{}
	dirty  []*goConn
	pool   chunkPool
	stop   bool
	stats  loopCounters
	done   chan struct{}

	wake        chan struct{} // capacity 1: a pending wake-up absorbs the next ones
	wakePending atomic.Int32
	mu          sync.Mutex
	tasks       []func()
	running     []func()
}

func (l *goLoop) Index() int         { return l.idx }
func (l *goLoop) Now() time.Duration { return time.Since(l.eng.base) }

func (l *goLoop) AfterFunc(d time.Duration, fn func()) *Timer {
	return l.timers.newTimer(d, fn)
}

func (l *goLoop) Trigger(fn func()) {
	if fn != nil {
		l.mu.Lock()
		l.tasks = append(l.tasks, fn)
		l.mu.Unlock()
	}
	l.stats.triggers.Add(1)
	if l.wakePending.CompareAndSwap(0, 1) {
		l.stats.wakeWrites.Add(1)
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

func (l *goLoop) run() {
	defer close(l.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for !l.stop {
		var timerC <-chan time.Time
		if d, ok := l.timers.next(int64(l.Now())); ok {
			t.Reset(d)
			timerC = t.C
		}
		select {
		case <-l.wake:
			l.stats.iterations.Add(1)
			l.stats.wakeups.Add(1)
			l.wakePending.Store(0)
			l.mu.Lock()
			l.tasks, l.running = l.running[:0], l.tasks
			l.mu.Unlock()
			for i, fn := range l.running {
				fn()
				l.running[i] = nil
				l.flushDirty()
			}
		case <-timerC:
			l.stats.iterations.Add(1)
		}
		if len(l.timers.ts) > 0 {
			l.timers.run(int64(l.Now() + l.eng.opts.TimerSlack))
			l.flushDirty()
		}
		if timerC != nil && !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
	}
	for c := range l.conns {
		l.closeConn(c, ErrEngineStopped)
	}
	l.timers.ts = nil
}

func (l *goLoop) Dial(addr *stdnet.TCPAddr, ctx any) {
	c := &goConn{l: l, ctx: ctx, dialing: true, raddr: addr}
	d := stdnet.Dialer{Timeout: l.eng.opts.DialTimeout}
	go func() {
		nc, err := d.Dial("tcp", addr.String())
		l.Trigger(func() {
			if err != nil {
				if ne, ok := err.(stdnet.Error); ok && ne.Timeout() {
					err = ErrTimeout
				}
				l.eng.h.OnClose(c, &DialError{Addr: addr.String(), Err: err})
				return
			}
			if l.stop {
				nc.Close()
				l.eng.h.OnClose(c, &DialError{Addr: addr.String(), Err: ErrEngineStopped})
				return
			}
			l.stats.dialed.Add(1)
			l.open(nc, c)
		})
	}()
}

// open adopts nc (c is the Dial's connection, nil for an accepted one).
func (l *goLoop) open(nc stdnet.Conn, c *goConn) {
	if l.stop {
		nc.Close()
		return
	}
	if c == nil {
		c = &goConn{l: l}
	}
	c.nc, c.dialing = nc, false
	if tc, ok := nc.(*stdnet.TCPConn); ok {
		tc.SetNoDelay(l.eng.opts.TCPNoDelay)
	}
	l.conns[c] = struct{}{}
	l.stats.conns.Add(1)
	l.eng.h.OnOpen(c)
	l.flushDirty()
	go c.readLoop(min(l.eng.opts.ReadBufferSize, 16<<10))
}

func (l *goLoop) markDirty(c *goConn) {
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
}

func (l *goLoop) flushDirty() {
	for i := 0; i < len(l.dirty); i++ {
		c := l.dirty[i]
		l.dirty[i] = nil
		c.dirty = false
		if !c.closed {
			l.flush(c)
		}
	}
	l.dirty = l.dirty[:0]
}

// flush hands pending output to a writer goroutine, one write at a time so
// that output stays in order.
func (l *goLoop) flush(c *goConn) {
	if c.writing {
		return
	}
	if n := c.out.Len(); n > 0 {
		data := make([]byte, 0, n)
		for _, b := range c.out.peek(nil, len(c.out.chunks)) {
			data = append(data, b...)
		}
		c.out.discard(&l.pool, n)
		c.writing = true
		l.eng.wg.Add(1) // stop waits for it, so Stats sees every byte written
		go func() {
			defer l.eng.wg.Done()
			n, err := c.nc.Write(data)
			// Counted here, where the bytes left, not in the callback:
			// a peer that closes right after its last response makes
			// the callback see a closed conn, and those bytes were
			// still written.
			l.stats.bytesWritten.Add(uint64(n))
			l.Trigger(func() {
				c.writing = false
				if c.closed {
					return
				}
				if err != nil {
					l.closeConn(c, err)
					return
				}
				l.flush(c)
			})
		}()
		return
	}
	if c.closeReq {
		l.closeConn(c, nil)
	}
}

func (l *goLoop) closeConn(c *goConn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	delete(l.conns, c)
	l.stats.conns.Add(-1)
	c.nc.Close()
	c.out.reset(&l.pool)
	l.eng.h.OnClose(c, err)
}

type goConn struct {
	l        *goLoop
	nc       stdnet.Conn
	raddr    stdnet.Addr
	ctx      any
	out      outBuffer
	dialing  bool
	dirty    bool
	writing  bool
	closeReq bool
	closed   bool
}

func (c *goConn) Loop() Loop       { return c.l }
func (c *goConn) Context() any     { return c.ctx }
func (c *goConn) SetContext(v any) { c.ctx = v }
func (c *goConn) Pending() int     { return c.out.Len() }

func (c *goConn) LocalAddr() stdnet.Addr {
	if c.nc == nil {
		return nil
	}
	return c.nc.LocalAddr()
}

func (c *goConn) RemoteAddr() stdnet.Addr {
	if c.nc == nil {
		return c.raddr
	}
	return c.nc.RemoteAddr()
}

func (c *goConn) Write(b []byte) {
	if c.closed || c.closeReq || len(b) == 0 {
		return
	}
	c.out.write(&c.l.pool, b)
	c.l.markDirty(c)
}

func (c *goConn) Close() {
	if c.closed || c.closeReq {
		return
	}
	c.closeReq = true
	c.l.markDirty(c)
}

// readLoop reads and hands each chunk to the loop, waiting until the
// handler is done with it before reusing the buffer.
func (c *goConn) readLoop(size int) {
	buf := make([]byte, size)
	done := make(chan struct{}, 1)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.l.Trigger(func() {
				if !c.closed && !c.closeReq {
					c.l.stats.bytesRead.Add(uint64(n))
					c.l.eng.h.OnData(c, buf[:n])
				}
				done <- struct{}{}
			})
			select {
			case <-done:
			case <-c.l.done:
				return
			}
		}
		if err != nil {
			if err == io.EOF || !isClosedErr(err) {
				c.l.Trigger(func() {
					if c.closeReq && err == io.EOF {
						err = nil
					}
					c.l.closeConn(c, err)
				})
			}
			return
		}
	}
}

func isClosedErr(err error) bool { return errors.Is(err, stdnet.ErrClosed) }
