package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	mnet "github.com/microctl/microctl/pkg/net"
)

// Server is microctl's built-in target: a minimal HTTP/1.1 server on
// pkg/net (keep-alive, pipelining, Content-Length and chunked request
// bodies) that answers every request with the same body; or, with Echo, a
// raw TCP echo server. It is what `microctl serve` runs and what `microctl
// bench` without a URL measures.
type Server struct {
	o     ServerOptions
	eng   *mnet.Engine
	addr  net.Addr
	loops []*serverLoop
}

// ServerOptions configure a Server.
type ServerOptions struct {
	Addr     string // default 127.0.0.1:8080
	Loops    int    // default GOMAXPROCS
	BodySize int    // response body size; default 13, as "Hello, World!"
	Echo     bool   // raw TCP echo instead of HTTP
	Engine   string // pkg/net engine
	// TLS, when set, makes it an HTTPS server (HTTP/1.1 over TLS).
	TLS *tls.Config
}

// ServerOption sets one field of ServerOptions.
type ServerOption func(*ServerOptions)

// WithServerAddr sets the listening address.
func WithServerAddr(a string) ServerOption { return func(o *ServerOptions) { o.Addr = a } }

// WithServerLoops sets the number of event loops.
func WithServerLoops(n int) ServerOption { return func(o *ServerOptions) { o.Loops = n } }

// WithBodySize sets the size of the response body.
func WithBodySize(n int) ServerOption { return func(o *ServerOptions) { o.BodySize = n } }

// WithEcho makes the server a raw TCP echo server.
// WithServerTLS serves HTTPS with this configuration.
func WithServerTLS(cfg *tls.Config) ServerOption { return func(o *ServerOptions) { o.TLS = cfg } }

func WithEcho(v bool) ServerOption { return func(o *ServerOptions) { o.Echo = v } }

// WithServerEngine picks the pkg/net engine.
func WithServerEngine(name string) ServerOption { return func(o *ServerOptions) { o.Engine = name } }

// ServerStats are the server's counters since it started.
type ServerStats struct {
	Engine       string `json:"engine"`
	Requests     uint64 `json:"requests"` // requests answered (HTTP mode)
	BytesRead    uint64 `json:"bytes_read"`
	BytesWritten uint64 `json:"bytes_written"`
	Accepted     uint64 `json:"accepted"`
	Conns        int64  `json:"conns"`
}

// NewServer builds a server; Start makes it listen.
func NewServer(opts ...ServerOption) (*Server, error) {
	o := ServerOptions{Addr: "127.0.0.1:8080", Loops: runtime.GOMAXPROCS(0), BodySize: 13}
	for _, opt := range opts {
		opt(&o)
	}
	if o.BodySize < 0 {
		return nil, &ConfigError{Err: errNegativeBody}
	}
	s := &Server{o: o}
	eng, err := mnet.New(s, mnet.WithLoops(o.Loops), mnet.WithEngine(o.Engine))
	if err != nil {
		return nil, err
	}
	s.eng = eng
	body := make([]byte, o.BodySize)
	copy(body, "Hello, World!")
	for i := 13; i < len(body); i++ {
		body[i] = 'a' + byte(i%26)
	}
	for range eng.Loops() {
		sl := &serverLoop{body: body}
		if o.TLS != nil {
			sl.plain = make([]byte, 32<<10)
		}
		s.loops = append(s.loops, sl)
	}
	return s, nil
}

var errNegativeBody = errorString("body size must not be negative")

type errorString string

func (e errorString) Error() string { return string(e) }

// Start listens and serves until Stop.
func (s *Server) Start() error {
	addr, err := s.eng.Listen("tcp", s.o.Addr)
	if err != nil {
		return err
	}
	s.addr = addr
	for i, l := range s.eng.Loops() {
		sl := s.loops[i]
		l.Trigger(func() { sl.tick(l) })
	}
	s.eng.Start()
	return nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Engine names the pkg/net engine in use.
func (s *Server) Engine() string { return s.eng.Name() }

// Stop closes every connection and the listener.
func (s *Server) Stop(ctx context.Context) error { return s.eng.Stop(ctx) }

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	st := ServerStats{Engine: s.eng.Name()}
	for i, ls := range s.eng.Stats() {
		st.BytesRead += ls.BytesRead
		st.BytesWritten += ls.BytesWritten
		st.Accepted += ls.Accepted
		st.Conns += ls.Conns
		st.Requests += s.loops[i].requests.Load()
	}
	return st
}

// serverLoop is a loop's share of the server: its responses, rebuilt
// each second with the Date header, and its counter.
type serverLoop struct {
	body     []byte
	ok       []byte // 200 with body
	okHead   []byte // 200 for HEAD
	okClose  []byte // 200 with body and Connection: close
	requests atomic.Uint64
	plain    []byte // TLS: decrypted bytes
	_        [64]byte
}

func (sl *serverLoop) tick(l mnet.Loop) {
	date := time.Now().UTC().Format(http1Date)
	hdr := "HTTP/1.1 200 OK\r\nServer: microctl\r\nDate: " + date +
		"\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(sl.body)) + "\r\n"
	sl.okHead = []byte(hdr + "\r\n")
	sl.ok = append([]byte(hdr+"\r\n"), sl.body...)
	sl.okClose = append([]byte(hdr+"Connection: close\r\n\r\n"), sl.body...)
	// Next second, on the second.
	now := time.Now()
	l.AfterFunc(now.Truncate(time.Second).Add(time.Second).Sub(now), func() { sl.tick(l) })
}

const http1Date = "Mon, 02 Jan 2006 15:04:05 GMT"

// serverConn is the state of one server connection between reads.
type serverConn struct {
	partial []byte // a request head begun in an earlier read
	body    bodyReader
	inBody  bool
	pending request // the request whose body is being read

	hs *tlsAdapter // TLS: handshake running
	tc *tlsConn    // TLS: after the handshake
}

func (s *Server) OnOpen(c mnet.Conn) {
	if s.o.Echo {
		return
	}
	sc := &serverConn{}
	c.SetContext(sc)
	if s.o.TLS != nil {
		sc.hs = startHandshake(c, s.o.TLS, 10*time.Second, false, func(tc *tlsConn, err error) {
			sc.hs = nil
			if err != nil {
				c.Close() // the client sees the alert crypto/tls sent
				return
			}
			sc.tc = tc
			// crypto/tls reads ahead: records after the handshake's last
			// may already sit in its buffer, with nothing left to wake us.
			s.readTLS(c, sc)
		})
	}
}

func (s *Server) OnClose(c mnet.Conn, err error) {
	if sc, ok := c.Context().(*serverConn); ok {
		if sc.hs != nil {
			sc.hs.Close()
		}
		sc.tc = nil
	}
}

// readTLS decrypts what has come and serves it.
func (s *Server) readTLS(c mnet.Conn, sc *serverConn) {
	sl := s.loops[c.Loop().Index()]
	for sc.tc != nil {
		n, err := sc.tc.t.Read(sl.plain)
		if n > 0 {
			s.serve(sc.tc, sc, sl.plain[:n])
			continue
		}
		if err != nil && err != errWouldBlock {
			c.Close()
		}
		return
	}
}

// OnData answers every complete request in the read, in order; their
// responses leave in one write when the callback returns.
func (s *Server) OnData(c mnet.Conn, in []byte) {
	if s.o.Echo {
		c.Write(in)
		return
	}
	sc := c.Context().(*serverConn)
	if s.o.TLS != nil {
		switch {
		case sc.hs != nil:
			sc.hs.feed(in)
		case sc.tc != nil:
			sc.tc.a.feed(in)
			s.readTLS(c, sc)
		}
		return
	}
	s.serve(c, sc, in)
}

// serve answers the requests in in (decrypted, with TLS).
func (s *Server) serve(c mnet.Conn, sc *serverConn, in []byte) {
	sl := s.loops[c.Loop().Index()]
	for len(in) > 0 {
		if sc.inBody {
			n, done, err := sc.body.feed(in)
			if err != nil {
				s.fail(c, "400 Bad Request")
				return
			}
			in = in[n:]
			if !done {
				return
			}
			sc.inBody = false
			if !s.respond(c, sl, sc.pending) {
				return
			}
			continue
		}
		var head []byte
		if len(sc.partial) > 0 {
			from := max(0, len(sc.partial)-3)
			sc.partial = append(sc.partial, in...)
			i := bytes.Index(sc.partial[from:], crlfcrlf)
			if i < 0 {
				if len(sc.partial) > maxHeader {
					s.fail(c, "431 Request Header Fields Too Large")
				}
				return
			}
			end := from + i + 4
			head, in = sc.partial[:end], sc.partial[end:]
			sc.partial = nil // head and in still use the old array
		} else {
			i := bytes.Index(in, crlfcrlf)
			if i < 0 {
				if len(in) > maxHeader {
					s.fail(c, "431 Request Header Fields Too Large")
					return
				}
				sc.partial = append(sc.partial[:0], in...)
				return
			}
			head, in = in[:i+4], in[i+4:]
		}
		req, err := parseRequestHead(head)
		if err != nil {
			s.fail(c, "400 Bad Request")
			return
		}
		if req.chunked || req.length > 0 {
			sc.body.reset(req.chunked, req.length)
			sc.inBody, sc.pending = true, req
			continue
		}
		if !s.respond(c, sl, req) {
			return
		}
	}
}

// respond writes the response to req; false when the connection closes.
func (s *Server) respond(c mnet.Conn, sl *serverLoop, req request) bool {
	sl.requests.Add(1)
	switch {
	case req.close:
		c.Write(sl.okClose)
		c.Close()
		return false
	case req.head:
		c.Write(sl.okHead)
	default:
		c.Write(sl.ok)
	}
	return true
}

func (s *Server) fail(c mnet.Conn, status string) {
	c.Write([]byte("HTTP/1.1 " + status + "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
	c.Close()
}

var crlfcrlf = []byte("\r\n\r\n")
