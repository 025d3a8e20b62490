// Package boundhttp bounds every HTTP request a client makes to Consul or
// to the Docker Engine, and recognises a server that is not what the
// client expects. It sits in the client's transport, so every request of
// every command is bounded without each call site having to remember a
// deadline: an endpoint that accepts the connection and never answers ends
// in one TimeoutError naming the address, and an HTTP server that is not
// Consul (or not a Docker Engine) ends in one WrongPeerError.
package boundhttp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// TimeoutError means the peer at Addr accepted the request (or did not
// refuse the connection) but did not answer within After.
type TimeoutError struct {
	Peer  string // "Consul", "the Docker Engine"
	Addr  string
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s at %s did not answer within %s", e.Peer, e.Addr, e.After)
}

// Hint says what to do about it.
func (e *TimeoutError) Hint() string {
	return "check the address; --timeout or MICROCTL_TIMEOUT sets how long to wait"
}

// WrongPeerError means something answered at Addr, and it is not Peer: an
// HTML page, a 404 where every agent answers, a ping without the engine's
// headers. Saw says what gave it away.
type WrongPeerError struct {
	Peer string // "a Consul agent", "a Docker Engine"
	Addr string
	Saw  string
}

func (e *WrongPeerError) Error() string {
	return fmt.Sprintf("the server at %s is not %s (%s)", e.Addr, e.Peer, e.Saw)
}

// Hint says what to do about it.
func (e *WrongPeerError) Hint() string { return "check the address" }

// Options configure a bounded transport.
type Options struct {
	// Peer and Addr name the other end in errors ("Consul", "127.0.0.1:8500").
	Peer string
	Addr string
	// Timeout bounds each request, from sending it to the end of its body.
	// Zero means no bound.
	Timeout time.Duration
	// Extra is added to Timeout for a request that is meant to wait (a
	// Consul blocking query): its own wait. Nil adds nothing.
	Extra func(*http.Request) time.Duration
	// Identify returns why a response shows that the server is not the
	// expected peer, or "" when it may be. Nil accepts everything.
	Identify func(*http.Request, *http.Response) string
	// WrongPeer names the peer in WrongPeerError ("a Consul agent").
	WrongPeer string
	// Sticky reports requests whose timeout dooms every later request
	// too: the Docker client swallows a failed /_ping and then sends the
	// real request, which would double the time to fail.
	Sticky func(*http.Request) bool
}

type transport struct {
	base http.RoundTripper
	o    Options
	// fail, once set, fails every later request at once: a server that is
	// not the expected peer will not become one during a command.
	fail atomic.Pointer[error]
}

type streamKey struct{}

// Stream marks the requests made with ctx as streams: the bound covers
// the time until the response's headers arrive, and the body may then run
// as long as ctx lives (a followed log). Everything else about the
// request is as for any other.
func Stream(ctx context.Context) context.Context {
	return context.WithValue(ctx, streamKey{}, true)
}

func isStream(ctx context.Context) bool { v, _ := ctx.Value(streamKey{}).(bool); return v }

// New wraps base.
func New(base http.RoundTripper, o Options) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{base: base, o: o}
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if e := t.fail.Load(); e != nil {
		return nil, *e
	}
	parent := req.Context()
	d := t.o.Timeout
	if d > 0 && t.o.Extra != nil {
		d += t.o.Extra(req)
	}
	// A timer rather than context.WithTimeout: a stream (Stream) must
	// outlive the bound once its headers are in, and a deadline cannot be
	// taken back.
	ctx, cancelCtx := context.WithCancel(parent)
	var expired atomic.Bool
	var timer *time.Timer
	if d > 0 {
		timer = time.AfterFunc(d, func() { expired.Store(true); cancelCtx() })
	}
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
		}
	}
	cancel := func() { stopTimer(); cancelCtx() }
	timedOut := func() bool { return expired.Load() && parent.Err() == nil }
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		if timedOut() {
			var te error = &TimeoutError{Peer: t.o.Peer, Addr: t.o.Addr, After: d}
			if t.o.Sticky != nil && t.o.Sticky(req) {
				t.fail.Store(&te)
			}
			return nil, te
		}
		return nil, err
	}
	if t.o.Identify != nil {
		if why := t.o.Identify(req, resp); why != "" {
			_ = resp.Body.Close()
			cancel()
			var we error = &WrongPeerError{Peer: t.o.WrongPeer, Addr: t.o.Addr, Saw: why}
			t.fail.Store(&we)
			return nil, we
		}
	}
	if isStream(parent) {
		// The peer answered within the bound; what follows may last as
		// long as the caller's context (docker logs -f).
		stopTimer()
	}
	resp.Body = &body{ReadCloser: resp.Body, cancel: cancel, timedOut: timedOut,
		err: &TimeoutError{Peer: t.o.Peer, Addr: t.o.Addr, After: d}}
	return resp, nil
}

// body keeps the request's deadline running until the body is read or
// closed: a server that sends its headers and then stalls is bounded too.
type body struct {
	io.ReadCloser
	cancel   context.CancelFunc
	timedOut func() bool
	err      error
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.timedOut() {
		err = b.err
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}
