package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mnet "github.com/microctl/microctl/pkg/net"
)

// TLS on the event loop. Go's crypto/tls reads and writes a net.Conn; the
// adapter below is that net.Conn over a pkg/net connection:
//
//   - after the handshake, everything runs on the connection's loop: the
//     loop appends the ciphertext it read to the adapter, then reads the
//     tls.Conn until the adapter has no more bytes, at which point the
//     adapter returns a temporary net.Error, which crypto/tls hands back
//     without recording it (a partial record stays in its buffer for the
//     next read); writes go straight into the connection's output buffer,
//     flushed with everything else when the callback returns. No
//     goroutine, no lock.
//   - the handshake cannot be driven that way: crypto/tls runs it as one
//     blocking call, and an error from Read during it is final. So each
//     handshake runs in a goroutine of its own that lives only for the
//     handshake: its reads wait for the bytes the loop hands over, its
//     writes are posted to the loop (Trigger), and its result comes back
//     to the loop the same way. With keep-alive connections that is one
//     short goroutine per connection at the start of the run; with a new
//     connection per request, one per request, next to the handshake's
//     public-key operations, which cost far more.

// errWouldBlock tells crypto/tls that no more bytes are there yet. It is a
// temporary net.Error, which tls.Conn.Read returns without failing the
// connection.
var errWouldBlock = wouldBlockError{}

type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "no data yet" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

// tlsAdapter is the net.Conn crypto/tls sees.
type tlsAdapter struct {
	c    mnet.Conn
	loop mnet.Loop

	handshaking atomic.Bool

	mu     sync.Mutex // guards buf, off, closed while handshaking
	buf    []byte     // ciphertext received, not yet read
	off    int
	closed bool
	signal chan struct{} // handshake: bytes arrived, or closed
}

func newTLSAdapter(c mnet.Conn) *tlsAdapter {
	return &tlsAdapter{c: c, loop: c.Loop(), signal: make(chan struct{}, 1)}
}

// feed appends ciphertext the loop read. Loop only.
func (a *tlsAdapter) feed(in []byte) {
	if !a.handshaking.Load() {
		if a.off == len(a.buf) {
			a.buf, a.off = a.buf[:0], 0
		}
		a.buf = append(a.buf, in...)
		return
	}
	a.mu.Lock()
	a.buf = append(a.buf, in...)
	a.mu.Unlock()
	select {
	case a.signal <- struct{}{}:
	default:
	}
}

func (a *tlsAdapter) pending() bool { return a.off < len(a.buf) }

func (a *tlsAdapter) take(p []byte) int {
	n := copy(p, a.buf[a.off:])
	a.off += n
	if a.off == len(a.buf) {
		a.buf, a.off = a.buf[:0], 0
	}
	return n
}

func (a *tlsAdapter) Read(p []byte) (int, error) {
	if !a.handshaking.Load() {
		if !a.pending() {
			return 0, errWouldBlock
		}
		return a.take(p), nil
	}
	for {
		a.mu.Lock()
		if a.pending() {
			n := a.take(p)
			a.mu.Unlock()
			return n, nil
		}
		closed := a.closed
		a.mu.Unlock()
		if closed {
			return 0, net.ErrClosed
		}
		<-a.signal
	}
}

func (a *tlsAdapter) Write(p []byte) (int, error) {
	if !a.handshaking.Load() {
		a.c.Write(p)
		return len(p), nil
	}
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return 0, net.ErrClosed
	}
	b := append([]byte(nil), p...)
	a.loop.Trigger(func() {
		a.mu.Lock()
		closed := a.closed
		a.mu.Unlock()
		if !closed {
			a.c.Write(b)
		}
	})
	return len(p), nil
}

// Close marks the adapter closed: a handshake waiting for bytes gives up.
// crypto/tls calls it when the handshake's context expires; the loop
// calls it when the connection ends.
func (a *tlsAdapter) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	select {
	case a.signal <- struct{}{}:
	default:
	}
	return nil
}

func (a *tlsAdapter) LocalAddr() net.Addr              { return a.c.LocalAddr() }
func (a *tlsAdapter) RemoteAddr() net.Addr             { return a.c.RemoteAddr() }
func (a *tlsAdapter) SetDeadline(time.Time) error      { return nil }
func (a *tlsAdapter) SetReadDeadline(time.Time) error  { return nil }
func (a *tlsAdapter) SetWriteDeadline(time.Time) error { return nil }

// tlsConn is a pkg/net connection speaking TLS: Write encrypts.
type tlsConn struct {
	mnet.Conn
	a *tlsAdapter
	t *tls.Conn
}

func (c *tlsConn) Write(b []byte) {
	if _, err := c.t.Write(b); err != nil {
		c.Conn.Close()
	}
}

// startHandshake runs the handshake (the client's, or the server's) on c
// in a goroutine of its own and calls done on c's loop with the result.
func startHandshake(c mnet.Conn, cfg *tls.Config, timeout time.Duration, client bool, done func(*tlsConn, error)) *tlsAdapter {
	a := newTLSAdapter(c)
	a.handshaking.Store(true)
	var t *tls.Conn
	if client {
		t = tls.Client(a, cfg)
	} else {
		t = tls.Server(a, cfg)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		err := t.HandshakeContext(ctx)
		cancel()
		a.loop.Trigger(func() {
			a.handshaking.Store(false)
			done(&tlsConn{Conn: c, a: a, t: t}, err)
		})
	}()
	return a
}

// TLSError is a failed TLS handshake: its own error kind, with the reason.
type TLSError struct {
	Addr string
	Err  error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS handshake with %s failed: %s", e.Addr, TLSReason(e.Err))
}
func (e *TLSError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *TLSError) Hint() string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.Is(e.Err, errH2Refused):
		return "leave out --http2, or benchmark a server that offers h2"
	case errors.As(e.Err, &ua):
		return "give the CA that signed the server's certificate with --cacert, or skip verification with -k"
	case errors.As(e.Err, &he):
		return "connect by the name on the certificate, or set it with --sni"
	}
	return "check that the target speaks TLS on that port (https://), and its certificate"
}

// TLSReason names why a handshake failed: unknown authority, name
// mismatch, protocol version, expired certificate, then the error itself.
func TLSReason(err error) string {
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var ae tls.AlertError
	var rh tls.RecordHeaderError
	msg := err.Error()
	switch {
	case errors.As(err, &ua):
		return "unknown authority: " + msg
	case errors.As(err, &he):
		return "name mismatch: " + msg
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "certificate expired: " + msg
	case errors.As(err, &ci):
		return "invalid certificate: " + msg
	case errors.As(err, &rh):
		return "not TLS: " + msg
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &ae) && tls.AlertError(70) == ae, strings.Contains(msg, "protocol version"):
		return "protocol version: " + msg
	}
	return msg
}

// ClientTLS are the user's TLS settings for https targets.
type ClientTLS struct {
	ServerName string // --sni: instead of each URL's host
	CACert     string // --cacert: PEM file of the CAs to trust instead of the system's
	Cert, Key  string // --cert, --key: a client certificate
	Insecure   bool   // -k: no verification at all
}

// Config builds the tls.Config; file errors name the file.
func (c ClientTLS) Config() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.Insecure} //nolint:gosec // -k asks for it
	if c.CACert != "" {
		pem, err := os.ReadFile(c.CACert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", c.CACert)
		}
		cfg.RootCAs = pool
	}
	switch {
	case c.Cert != "" && c.Key != "":
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case c.Cert != "" || c.Key != "":
		return nil, errors.New("--cert and --key go together")
	}
	return cfg, nil
}
