package net

import (
	"bytes"
	"context"
	"io"
	stdnet "net"
	"sync"
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

func engines(t *testing.T) []string {
	if defaultEngine == EngineEpoll {
		return []string{EngineEpoll, EngineGo}
	}
	return []string{EngineGo}
}

func startEngine(t *testing.T, h Handler, opts ...Option) *Engine {
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
