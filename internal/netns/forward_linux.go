//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Target is where a forwarder connects: an address as seen from inside a
// network namespace.
type Target struct {
	Netns string // path: /run/netns/NAME
	Addr  string // host:port
}

// DialIn connects to addr from inside the namespace at path. Only the
// socket is made there (on a thread that enters the namespace and is then
// discarded); the connection is used from anywhere.
func DialIn(ctx context.Context, path, addr string) (net.Conn, error) {
	var c net.Conn
	err := RunIn(path, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// Forward accepts connections on ln (in the namespace the caller runs in:
// the host's) and joins each to the first target that accepts within
// connectTimeout, tried in order: the lab's namespaces are private, and
// this is how microctl, running outside them, reaches a published port
// inside. It returns when ctx ends or ln fails.
func Forward(ctx context.Context, ln net.Listener, targets []Target, connectTimeout time.Duration) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			up, err := dialFirst(ctx, targets, connectTimeout)
			if err != nil {
				return // the client sees the connection closed
			}
			defer up.Close()
			join(c, up)
		}()
	}
}

func dialFirst(ctx context.Context, targets []Target, timeout time.Duration) (net.Conn, error) {
	var errs []error
	for _, t := range targets {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := DialIn(dctx, t.Netns, t.Addr)
		cancel()
		if err == nil {
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s in %s: %w", t.Addr, t.Netns, err))
	}
	return nil, errors.Join(errs...)
}

// join copies both ways until both directions end; a half-close is passed
// on so that HTTP/1.0 clients see the end of a response.
func join(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	// One side ended: the other gets a while to finish, not forever (a
	// partitioned node never answers).
	deadline := time.Now().Add(30 * time.Second)
	_ = a.SetDeadline(deadline)
	_ = b.SetDeadline(deadline)
	<-done
}
