package net

import (
	"bytes"
	"context"
	"errors"
	"io"
	stdnet "net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// echo is a Handler that sends back what it reads.
type echo struct {
	mu     sync.Mutex
	opened int
	closed []error
}

func (h *echo) OnOpen(c Conn) {
	h.mu.Lock()
	h.opened++
	h.mu.Unlock()
}
func (h *echo) OnData(c Conn, in []byte) { c.Write(in) }
func (h *echo) OnClose(c Conn, err error) {
	h.mu.Lock()
	h.closed = append(h.closed, err)
	h.mu.Unlock()
}

// nopHandler accepts connections and ignores them.
type nopHandler struct{}

func (nopHandler) OnOpen(Conn)         {}
func (nopHandler) OnData(Conn, []byte) {}
func (nopHandler) OnClose(Conn, error) {}

func engines(t *testing.T) []string { return engineList() }

// engineList is every engine this OS has.
func engineList() []string {
	if defaultEngine == EngineEpoll {
		return []string{EngineEpoll, EngineGo}
	}
	return []string{EngineGo}
}

func startEngine(t testing.TB, h Handler, opts ...Option) *Engine {
	t.Helper()
	e, err := New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return e
}

func TestEchoServer(t *testing.T) {
	for _, name := range engines(t) {
		t.Run(name, func(t *testing.T) {
			h := &echo{}
			e := startEngine(t, h, WithEngine(name), WithLoops(2))
			if e.Name() != name {
				t.Fatalf("Name() = %q, want %q", e.Name(), name)
			}
			addr, err := e.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 4; i++ {
				c, err := stdnet.Dial("tcp", addr.String())
				if err != nil {
					t.Fatal(err)
				}
				msg := bytes.Repeat([]byte("hello "), 1000*(i+1))
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(msg))
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("echo mismatch")
				}
				c.Close()
			}
		})
	}
}

// dialer records the outcome of dials.
type dialer struct {
	opened chan Conn
	closed chan error
	data   chan string
}

func newDialer() *dialer {
	return &dialer{opened: make(chan Conn, 8), closed: make(chan error, 8), data: make(chan string, 8)}
}
func (d *dialer) OnOpen(c Conn)            { d.opened <- c; c.Write([]byte("ping")) }
func (d *dialer) OnData(c Conn, in []byte) { d.data <- string(in); c.Close() }
func (d *dialer) OnClose(c Conn, err error) {
	d.closed <- err
}

func TestDial(t *testing.T) {
	for _, name := range engines(t) {
		t.Run(name, func(t *testing.T) {
			srv := startEngine(t, &echo{}, WithEngine(name), WithLoops(1))
			addr, err := srv.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			d := newDialer()
			cli := startEngine(t, d, WithEngine(name), WithLoops(2))
			if err := cli.Dial("tcp", addr.String(), "ctx"); err != nil {
				t.Fatal(err)
			}
			select {
			case c := <-d.opened:
				if c.Context() != "ctx" {
					t.Errorf("Context() = %v", c.Context())
				}
			case err := <-d.closed:
				t.Fatalf("dial failed: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("no OnOpen")
			}
			if got := <-d.data; got != "ping" {
				t.Errorf("echo = %q", got)
			}
			if err := <-d.closed; err != nil {
				t.Errorf("OnClose after Close: %v, want nil", err)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	// A port that was free a moment ago: nothing listens there.
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, name := range engines(t) {
		t.Run(name, func(t *testing.T) {
			d := newDialer()
			cli := startEngine(t, d, WithEngine(name), WithLoops(1))
			if err := cli.Dial("tcp", addr, nil); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-d.closed:
				var de *DialError
				if !errors.As(err, &de) {
					t.Fatalf("OnClose(%v), want a *DialError", err)
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("error %v is not ECONNREFUSED", err)
				}
			case <-d.opened:
				t.Fatal("connected to a closed port")
			case <-time.After(10 * time.Second):
				t.Fatal("no OnClose")
			}
		})
	}
}

// closer writes a greeting and closes at once: Close must send it first.
type closer struct{ nopHandler }

func (closer) OnOpen(c Conn) {
	c.Write(bytes.Repeat([]byte("x"), 1<<20))
	c.Write([]byte("bye"))
	c.Close()
}

func TestCloseFlushesPendingOutput(t *testing.T) {
	for _, name := range engines(t) {
		t.Run(name, func(t *testing.T) {
			e := startEngine(t, closer{}, WithEngine(name))
			addr, err := e.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			c, err := stdnet.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			time.Sleep(20 * time.Millisecond) // let the output back up
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 1<<20+3 || string(b[len(b)-3:]) != "bye" {
				t.Fatalf("got %d bytes ending %q", len(b), b[max(0, len(b)-3):])
			}
		})
	}
}

func TestTimersRunOnTheLoop(t *testing.T) {
	for _, name := range engines(t) {
		t.Run(name, func(t *testing.T) {
			e := startEngine(t, nopHandler{}, WithEngine(name), WithLoops(1))
			l := e.Loops()[0]
			got := make(chan string, 10)
			l.Trigger(func() {
				var order []string
				l.AfterFunc(30*time.Millisecond, func() { order = append(order, "c"); got <- strings.Join(order, "") })
				l.AfterFunc(10*time.Millisecond, func() { order = append(order, "a") })
				stopped := l.AfterFunc(20*time.Millisecond, func() { order = append(order, "X") })
				l.AfterFunc(20*time.Millisecond, func() { order = append(order, "b") })
				if !stopped.Stop() {
					t.Error("Stop of a pending timer returned false")
				}
			})
			select {
			case s := <-got:
				if s != "abc" {
					t.Errorf("timers ran as %q, want abc", s)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("timers did not run")
			}
		})
	}
}
