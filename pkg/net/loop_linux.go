//go:build linux

package net

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollLoop is one event loop: an OS thread (when LockOSThread is on), an
// epoll instance, a wake-up eventfd, a timer heap, and the connections and
// listeners registered with it. Everything but Trigger runs on the loop.
type epollLoop struct {
	idx  int
	eng  *epollEngine
	h    Handler
	opts *Options
	p    *poller

	buf    []byte            // read buffer shared by the loop's connections
	events []unix.EpollEvent // epoll_wait's result buffer, grown when full
	conns  []*conn           // indexed by fd
	lns    []*listenSocket   // sockets this loop accepts on
	pool   chunkPool         // free output chunks
	timers timerHeap         //
	dirty  []*conn           // written to or closed during the current callback
	iov    [][]byte          // scratch for writev
	iovecs []unix.Iovec      // scratch for writev
	seq    uint32            // sequence numbers for epoll data words
	nconns int               //
	stop   bool              // set by a task from Engine.Stop
	stats  loopCounters      //
	done   chan struct{}     // closed when run returns
	tid    atomic.Int32      // the loop's OS thread when locked to one; tests read its wake-ups in /proc

	// Wake-ups. wakePending is 1 from the eventfd write until the loop has
	// drained it: a Trigger that finds it set only queues its function.
	wakePending atomic.Int32
	efdMu       sync.RWMutex // held to write the eventfd; taken exclusively to close it
	efdClosed   bool
	mu          sync.Mutex
	tasks       []func()
	running     []func() // the batch being run, reused to avoid garbage
}

// maxIov bounds the chunks sent in one writev (16 x 16 KiB = 256 KiB).
const maxIov = 16

func newEpollLoop(e *epollEngine, idx int) (*epollLoop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &epollLoop{
		idx:    idx,
		eng:    e,
		h:      e.h,
		opts:   &e.opts,
		p:      p,
		buf:    make([]byte, e.opts.ReadBufferSize),
		events: make([]unix.EpollEvent, 128),
		done:   make(chan struct{}),
	}
	l.timers.now = func() int64 { return int64(time.Since(e.base)) }
	return l, nil
}

func (l *epollLoop) Index() int         { return l.idx }
func (l *epollLoop) Now() time.Duration { return time.Since(l.eng.base) }

func (l *epollLoop) AfterFunc(d time.Duration, fn func()) *Timer {
	return l.timers.newTimer(d, fn)
}

func (l *epollLoop) counters() *loopCounters { return &l.stats }

// Trigger queues fn (nil: just wake) and wakes the loop unless a wake-up
// is already pending.
func (l *epollLoop) Trigger(fn func()) {
	if fn != nil {
		l.mu.Lock()
		l.tasks = append(l.tasks, fn)
		l.mu.Unlock()
	}
	l.stats.triggers.Add(1)
	if l.opts.evio.noDrain || l.wakePending.CompareAndSwap(0, 1) {
		l.stats.wakeWrites.Add(1)
		// A Trigger that comes after the loop stopped must not write to
		// a closed descriptor: its number may belong to another file by now.
		l.efdMu.RLock()
		if !l.efdClosed {
			l.p.wake()
		}
		l.efdMu.RUnlock()
	}
}

// run is the loop. It returns after Engine.Stop, having closed everything.
func (l *epollLoop) run() {
	if l.opts.LockOSThread {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		l.tid.Store(int32(unix.Gettid()))
	}
	defer close(l.done)
	for !l.stop {
		timeout := time.Duration(-1)
		if d, ok := l.timers.next(int64(l.Now())); ok {
			timeout = d
		}
		n, err := l.p.wait(l.events, timeout)
		l.stats.iterations.Add(1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			// epoll_wait fails only on a programming error (EBADF,
			// EFAULT, EINVAL); spinning on it would burn a core.
			panic(osErr("epoll_wait", err))
		}
		for i := 0; i < n; i++ {
			ev := &l.events[i]
			l.dispatch(int(ev.Fd), uint32(ev.Pad), ev.Events)
		}
		if n == len(l.events) && n < 4096 {
			l.events = make([]unix.EpollEvent, 2*n)
		}
		if len(l.timers.ts) > 0 {
			l.timers.run(int64(l.Now() + l.opts.TimerSlack))
			l.flushDirty()
		}
	}
	l.shutdown()
}

func (l *epollLoop) dispatch(fd int, seq uint32, ev uint32) {
	if fd < len(l.conns) {
		if c := l.conns[fd]; c != nil {
			if c.seq == seq {
				l.connEvent(c, ev)
			}
			return
		}
	}
	if fd == l.p.efd {
		l.onWake()
		return
	}
	for _, ln := range l.lns {
		if ln.fd == fd {
			l.accept(ln)
			return
		}
	}
}

// onWake drains the eventfd, re-opens the door for the next wake-up, then
// runs the queued functions. The order matters: a Trigger that queues
// after the swap below sees wakePending 0 and writes the eventfd again.
func (l *epollLoop) onWake() {
	l.stats.wakeups.Add(1)
	if !l.opts.evio.noDrain {
		l.p.drain()
	}
	l.wakePending.Store(0)
	l.mu.Lock()
	l.tasks, l.running = l.running[:0], l.tasks
	l.mu.Unlock()
	for i, fn := range l.running {
		fn()
		l.running[i] = nil
	}
	l.flushDirty()
}

func (l *epollLoop) register(c *conn, events uint32) error {
	l.seq++
	c.seq = l.seq
	if err := l.p.add(c.fd, events, c.seq); err != nil {
		return err
	}
	for c.fd >= len(l.conns) {
		l.conns = append(l.conns, make([]*conn, len(l.conns)+64)...)
	}
	l.conns[c.fd] = c
	l.nconns++
	l.stats.conns.Add(1)
	return nil
}

// markDirty queues c for a flush when the current callback returns.
func (l *epollLoop) markDirty(c *conn) {
	if !c.dirty {
		c.dirty = true
		l.dirty = append(l.dirty, c)
	}
}

// flushDirty sends what callbacks wrote and carries out their Close calls.
func (l *epollLoop) flushDirty() {
	for i := 0; i < len(l.dirty); i++ {
		c := l.dirty[i]
		l.dirty[i] = nil
		c.dirty = false
		if c.state == stateClosed {
			continue
		}
		l.flush(c)
	}
	l.dirty = l.dirty[:0]
}

func (l *epollLoop) shutdown() {
	for _, c := range l.conns {
		if c != nil {
			l.closeConn(c, ErrEngineStopped)
		}
	}
	for _, t := range l.timers.ts {
		t.idx = -1
	}
	l.timers.ts = nil
	for _, ln := range l.lns {
		if !ln.shared {
			unix.Close(ln.fd)
		}
	}
	l.lns = nil
	l.efdMu.Lock()
	l.efdClosed = true
	l.p.close()
	l.efdMu.Unlock()
}
