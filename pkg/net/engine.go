package net

import (
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"sync/atomic"
)

// Engine is a set of event loops serving one Handler.
type Engine struct {
	opts Options
	impl engine
	next atomic.Uint32 // round-robin for Dial
}

// engine is what each implementation provides.
type engine interface {
	name() string
	listen(network, addr string) (stdnet.Addr, error)
	start()
	stop(ctx context.Context) error
	loopList() []Loop
	stats() []LoopStats
}

// runner is a loop as an engine keeps it.
type runner interface {
	Loop
	run()
	counters() *loopCounters
}

// loopSet is the part of an engine that does not depend on how its loops
// wait for events; both engines embed it.
type loopSet[L runner] struct {
	loops   []L
	started atomic.Bool
}

func (s *loopSet[L]) loopList() []Loop {
	ls := make([]Loop, len(s.loops))
	for i, l := range s.loops {
		ls[i] = l
	}
	return ls
}

func (s *loopSet[L]) stats() []LoopStats {
	st := make([]LoopStats, len(s.loops))
	for i, l := range s.loops {
		st[i] = l.counters().snapshot(i)
	}
	return st
}

// start runs every loop in its own goroutine, once.
func (s *loopSet[L]) start() {
	if s.started.Swap(true) {
		return
	}
	for _, l := range s.loops {
		go l.run()
	}
}

// New builds an engine with its loops, ready to Listen, Dial and Start.
func New(h Handler, opts ...Option) (*Engine, error) {
	if h == nil {
		return nil, errors.New("net: nil Handler")
	}
	o := newOptions(opts...)
	name := o.Engine
	if name == "" {
		name = defaultEngine
	}
	var impl engine
	var err error
	switch name {
	case EngineEpoll:
		impl, err = newEpollEngine(h, o)
	case EngineGo:
		impl, err = newGoEngine(h, o)
	default:
		return nil, fmt.Errorf("net: unknown engine %q (want %q or %q)", name, EngineEpoll, EngineGo)
	}
	if err != nil {
		return nil, err
	}
	return &Engine{opts: o, impl: impl}, nil
}

// Name says which engine runs: EngineEpoll or EngineGo.
func (e *Engine) Name() string { return e.impl.name() }

// Options returns the options in effect.
func (e *Engine) Options() Options { return e.opts }

// Listen accepts connections on a TCP address ("127.0.0.1:0" picks a free
// port) and returns the address bound. It may be called before or after Start.
func (e *Engine) Listen(network, addr string) (stdnet.Addr, error) {
	return e.impl.listen(network, addr)
}

// Dial resolves addr here, in the caller's goroutine, then connects from
// the next loop in turn. It may be called from any goroutine.
func (e *Engine) Dial(network, addr string, ctx any) error {
	a, err := stdnet.ResolveTCPAddr(network, addr)
	if err != nil {
		return err
	}
	loops := e.impl.loopList()
	l := loops[int(e.next.Add(1)-1)%len(loops)]
	l.Trigger(func() { l.Dial(a, ctx) })
	return nil
}

// Start runs the loops, each in its own goroutine, and returns.
func (e *Engine) Start() { e.impl.start() }

// Stop closes every connection and listener (OnClose with
// ErrEngineStopped) and waits for the loops to return, or for ctx.
func (e *Engine) Stop(ctx context.Context) error { return e.impl.stop(ctx) }

// Loops returns the loops, in index order.
func (e *Engine) Loops() []Loop { return e.impl.loopList() }

// Stats returns each loop's counters.
func (e *Engine) Stats() []LoopStats { return e.impl.stats() }
