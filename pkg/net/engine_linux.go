//go:build linux

package net

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// epollEngine is N epollLoops.
type epollEngine struct {
	h    Handler
	opts Options
	base time.Time // the loops' clock starts here
	loopSet[*epollLoop]
	stopped atomic.Bool

	mu     sync.Mutex
	shared []int // listening sockets shared by all loops (EPOLLEXCLUSIVE)
}

func newEpollEngine(h Handler, o Options) (engine, error) {
	e := &epollEngine{h: h, opts: o, base: time.Now()}
	for i := 0; i < o.Loops; i++ {
		l, err := newEpollLoop(e, i)
		if err != nil {
			for _, l := range e.loops {
				l.p.close()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	return e, nil
}

func (e *epollEngine) name() string { return EngineEpoll }

// exec runs fn on l and waits for it; before Start it runs fn here, since
// nothing else touches the loop yet.
func (e *epollEngine) exec(l *epollLoop, fn func()) {
	if !e.started.Load() {
		fn()
		return
	}
	done := make(chan struct{})
	l.Trigger(func() { fn(); close(done) })
	select {
	case <-done:
	case <-l.done:
	}
}

func (e *epollEngine) stop(ctx context.Context) error {
	if e.stopped.Swap(true) {
		return nil
	}
	if !e.started.Load() {
		// Never ran: close what New and Listen opened, on this goroutine.
		for _, l := range e.loops {
			l.shutdown()
		}
	} else {
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
	}
	e.mu.Lock()
	for _, fd := range e.shared {
		unix.Close(fd)
	}
	e.shared = nil
	e.mu.Unlock()
	return nil
}
