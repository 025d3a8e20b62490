package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mnet "github.com/microctl/microctl/pkg/net"
)

// countingListener counts what a server reads and writes on the wire.
type countingListener struct {
	net.Listener
	read, written atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.l.read.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.l.written.Add(int64(n))
	return n, err
}

// netHTTPServer starts a net/http server whose wire traffic is counted.
func netHTTPServer(t *testing.T, h http.Handler) (*httptest.Server, *countingListener) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	cl := &countingListener{Listener: srv.Listener}
	srv.Listener = cl
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, cl
}

func engineNames() []string {
	if e, _ := mnet.New(nopH{}); e != nil && e.Name() == mnet.EngineEpoll {
		e.Stop(context.Background())
		return []string{mnet.EngineEpoll, mnet.EngineGo}
	}
	return []string{mnet.EngineGo}
}

type nopH struct{}

func (nopH) OnOpen(mnet.Conn)         {}
func (nopH) OnData(mnet.Conn, []byte) {}
func (nopH) OnClose(mnet.Conn, error) {}

func run(t *testing.T, opts ...Option) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, opts...)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// TestAgainstNetHTTP checks the client against Go's own server: bodies
// framed every way net/http frames them, with request and byte counts
// exact on both sides.
func TestAgainstNetHTTP(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		// Flushing before the end makes net/http use chunked encoding.
		io.WriteString(w, "first chunk,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "second chunk")
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	mux.HandleFunc("/continue", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "after 103")
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		mux.ServeHTTP(w, r)
	})

	tests := []struct {
		path     string
		method   string
		body     string
		pipeline int
		status   string
	}{
		{path: "/chunked", status: "200"},
		{path: "/trailer", status: "200"},
		{path: "/big", status: "200"},
		{path: "/empty", status: "200"},
		{path: "/nocontent", status: "204"},
		{path: "/notmodified", status: "304"},
		{path: "/continue", status: "200"},
		{path: "/close", status: "200"},
		{path: "/big", method: "HEAD", status: "200"},
		{path: "/echo", method: "POST", body: "hello, server", status: "200"},
		{path: "/chunked", pipeline: 4, status: "200"},
		{path: "/empty", pipeline: 16, status: "200"},
	}
	for _, engine := range engineNames() {
		for _, tc := range tests {
			name := fmt.Sprintf("%s/%s%s", engine, tc.method, tc.path)
			if tc.pipeline > 0 {
				name += fmt.Sprintf("/pipeline%d", tc.pipeline)
			}
			t.Run(name, func(t *testing.T) {
				served.Store(0)
				srv, cl := netHTTPServer(t, counted)
				const n = 200
				opts := []Option{
					WithURL(srv.URL + tc.path), WithRequests(n), WithConnections(4), WithLoops(2), WithEngine(engine),
					WithTimeout(10 * time.Second),
				}
				if tc.method != "" {
					opts = append(opts, WithMethod(tc.method))
				}
				if tc.body != "" {
					opts = append(opts, WithBody([]byte(tc.body)))
				}
				if tc.pipeline > 0 {
					opts = append(opts, WithPipeline(tc.pipeline))
				}
				res := run(t, opts...)
				if res.Errors.Total != 0 {
					t.Fatalf("errors: %+v", res.Errors)
				}
				if res.Requests != n || res.Sent != n || res.Status[tc.status] != n {
					t.Fatalf("requests %d, sent %d, status %v; want %d of %s", res.Requests, res.Sent, res.Status, n, tc.status)
				}
				srv.Close() // wait for the handlers and the connections
				if got := served.Load(); got != n {
					t.Errorf("server answered %d requests, client counted %d", got, res.Requests)
				}
				if got := cl.written.Load(); got != int64(res.BytesRead) {
					t.Errorf("server wrote %d bytes, client read %d", got, res.BytesRead)
				}
				if got := cl.read.Load(); got != int64(res.BytesWritten) {
					t.Errorf("server read %d bytes, client wrote %d", got, res.BytesWritten)
				}
				if res.Latency.Count != n {
					t.Errorf("latency count %d, want %d", res.Latency.Count, n)
				}
			})
		}
	}
}

// TestCountsExactAgainstBuiltInServer: what the client counts is what
// the server counts, to the request and the byte.
func TestCountsExactAgainstBuiltInServer(t *testing.T) {
	for _, engine := range engineNames() {
		for _, pipeline := range []int{1, 10} {
			t.Run(fmt.Sprintf("%s/pipeline%d", engine, pipeline), func(t *testing.T) {
				srv := startServer(t, WithServerEngine(engine))
				const n = 20_011 // not a multiple of the connections
				res := run(t, WithURL("http://"+srv.Addr().String()+"/x"), WithRequests(n), WithConnections(7),
					WithPipeline(pipeline), WithEngine(engine), WithTimeout(10*time.Second))
				st := stopServer(t, srv)
				if res.Errors.Total != 0 {
					t.Fatalf("errors: %+v", res.Errors)
				}
				if res.Requests != n || st.Requests != n {
					t.Fatalf("client: %d responses; server: %d requests; want %d", res.Requests, st.Requests, n)
				}
				if res.BytesRead != st.BytesWritten || res.BytesWritten != st.BytesRead {
					t.Fatalf("client read %d / wrote %d bytes; server wrote %d / read %d",
						res.BytesRead, res.BytesWritten, st.BytesWritten, st.BytesRead)
				}
			})
		}
	}
}

func startServer(t *testing.T, opts ...ServerOption) *Server {
	t.Helper()
	srv, err := NewServer(append([]ServerOption{WithServerAddr("127.0.0.1:0"), WithServerLoops(2)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

func stopServer(t *testing.T, srv *Server) ServerStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	return srv.Stats()
}

func TestDurationRun(t *testing.T) {
	srv := startServer(t)
	res := run(t, WithURL("http://"+srv.Addr().String()+"/"), WithDuration(300*time.Millisecond), WithConnections(8))
	if res.Requests == 0 || res.Errors.Total != 0 {
		t.Fatalf("requests %d, errors %+v", res.Requests, res.Errors)
	}
	if res.ElapsedSeconds < 0.3 {
		t.Fatalf("elapsed %.3fs, shorter than the duration", res.ElapsedSeconds)
	}
	if res.Engine == "" || res.Settings.Connections != 8 {
		t.Fatalf("result settings: %+v", res)
	}
}

func TestTCPEcho(t *testing.T) {
	for _, engine := range engineNames() {
		t.Run(engine, func(t *testing.T) {
			srv := startServer(t, WithEcho(true), WithServerEngine(engine))
			const n = 5000
			res := run(t, WithTargets(srv.Addr().String()), WithTCP(0), WithBody([]byte("ping\n")),
				WithRequests(n), WithConnections(5), WithEngine(engine))
			if res.Requests != n || res.BytesRead != 5*n || res.Errors.Total != 0 {
				t.Fatalf("requests %d, bytes read %d, errors %+v", res.Requests, res.BytesRead, res.Errors)
			}
			if res.Mode != "tcp" || len(res.Status) != 0 {
				t.Fatalf("mode %q, status %v", res.Mode, res.Status)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = Run(context.Background(), WithURL("http://"+addr+"/"), WithDuration(time.Minute))
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v, want a *ConnectError", err)
	}
	if !strings.Contains(err.Error(), "connection refused") || ce.Hint() == "" {
		t.Fatalf("error %q", err)
	}
}

// rawServer accepts connections and runs fn on each.
func rawServer(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readRequests calls fn after each request head read from c.
func readRequests(c net.Conn, fn func(i int) bool) {
	r := bufio.NewReader(c)
	for i := 0; ; i++ {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		if !fn(i) {
			return
		}
	}
}

func TestErrorKinds(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	tests := []struct {
		name    string
		serve   func(c net.Conn)
		n       int64
		want    func(Errors) bool
		wantReq uint64
	}{
		{
			name: "not HTTP",
			serve: func(c net.Conn) {
				readRequests(c, func(int) bool { io.WriteString(c, "SSH-2.0-nope\r\n"); return true })
			},
			n: 3, want: func(e Errors) bool { return e.Parse == 3 && e.Total == 3 },
		},
		{
			name:  "no answer",
			serve: func(c net.Conn) { io.Copy(io.Discard, c) },
			n:     2, want: func(e Errors) bool { return e.Timeout == 2 && e.Total == 2 },
		},
		{
			name: "closed mid-response",
			serve: func(c net.Conn) {
				readRequests(c, func(int) bool { io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"); return false })
			},
			n: 3, want: func(e Errors) bool { return e.Closed == 3 && e.Total == 3 },
		},
		{
			name:  "closed before answering",
			serve: func(c net.Conn) { readRequests(c, func(int) bool { return false }) },
			n:     3, want: func(e Errors) bool { return e.Closed == 3 && e.Total == 3 },
		},
		{
			// A server that closes after each response without saying
			// so (no Connection: close): the client has already sent the
			// next request when it sees the close, and that request is
			// lost. That is counted, not retried behind the user's back.
			name: "closes after each response, unannounced",
			serve: func(c net.Conn) {
				readRequests(c, func(int) bool { io.WriteString(c, ok); return false })
			},
			n: 20, wantReq: 10, want: func(e Errors) bool { return e.Closed == 10 && e.Total == 10 },
		},
		{
			name: "closes after each response, announced",
			serve: func(c net.Conn) {
				readRequests(c, func(int) bool {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
					return false
				})
			},
			n: 20, wantReq: 20, want: func(e Errors) bool { return e.Total == 0 },
		},
		{
			name: "body until close",
			serve: func(c net.Conn) {
				readRequests(c, func(int) bool { io.WriteString(c, "HTTP/1.1 200 OK\r\n\r\nthe body"); return false })
			},
			n: 20, wantReq: 20, want: func(e Errors) bool { return e.Total == 0 },
		},
	}
	for _, engine := range engineNames() {
		for _, tc := range tests {
			t.Run(engine+"/"+tc.name, func(t *testing.T) {
				addr := rawServer(t, tc.serve)
				res := run(t, WithURL("http://"+addr+"/"), WithRequests(tc.n), WithConnections(1),
					WithTimeout(200*time.Millisecond), WithEngine(engine))
				if !tc.want(res.Errors) || res.Requests != tc.wantReq {
					t.Fatalf("requests %d (want %d), errors %+v", res.Requests, tc.wantReq, res.Errors)
				}
			})
		}
	}
}

// TestRateCorrectsCoordinatedOmission: a server that stalls once for
// 300 ms holds up every request due meanwhile. Measured from when they
// were sent, only one request is slow; measured from when they were due
// (the corrected figure), all those held up are.
func TestRateCorrectsCoordinatedOmission(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	addr := rawServer(t, func(c net.Conn) {
		readRequests(c, func(i int) bool {
			if i == 50 {
				time.Sleep(300 * time.Millisecond)
			}
			io.WriteString(c, ok)
			return true
		})
	})
	res := run(t, WithURL("http://"+addr+"/"), WithRequests(400), WithConnections(1), WithRate(1000),
		WithTimeout(5*time.Second))
	if res.Requests != 400 || res.LatencyUncorrected == nil || res.Rate == nil {
		t.Fatalf("requests %d, uncorrected %v, rate %v", res.Requests, res.LatencyUncorrected, res.Rate)
	}
	// Each request's corrected latency is at least its uncorrected one, so
	// every percentile is too.
	c, u := res.Latency, *res.LatencyUncorrected
	for _, p := range [][2]float64{{c.P50US, u.P50US}, {c.P90US, u.P90US}, {c.P99US, u.P99US}, {c.MaxUS, u.MaxUS}, {c.MinUS, u.MinUS}} {
		if p[0] < p[1] {
			t.Errorf("corrected %v below uncorrected %v", c, u)
		}
	}
	slow := func(us int64) (n int64) {
		for _, b := range res.Histogram().Distribution() {
			if b.From >= us {
				n += b.Count
			}
		}
		return n
	}
	slowU := func(us int64) (n int64) {
		for _, b := range res.HistogramUncorrected().Distribution() {
			if b.From >= us {
				n += b.Count
			}
		}
		return n
	}
	// About 300 requests were due during the stall; allow for a slow machine.
	if got := slow(100_000); got < 150 {
		t.Errorf("corrected: %d requests above 100ms, want most of the ~300 held up", got)
	}
	if got := slowU(250_000); got < 1 || got > 20 {
		t.Errorf("uncorrected: %d requests above 250ms, want the one that stalled", got)
	}
}

func TestSpreadsOverTargets(t *testing.T) {
	a, b := startServer(t), startServer(t)
	res := run(t, WithTargets(a.Addr().String(), b.Addr().String()), WithURL("http://service/p"),
		WithRequests(1000), WithConnections(4))
	sa, sb := stopServer(t, a), stopServer(t, b)
	if res.Requests != 1000 || sa.Requests+sb.Requests != 1000 {
		t.Fatalf("client %d, servers %d + %d", res.Requests, sa.Requests, sb.Requests)
	}
	if sa.Accepted != 2 || sb.Accepted != 2 {
		t.Fatalf("connections: %d and %d, want 2 each", sa.Accepted, sb.Accepted)
	}
	if len(res.Targets) != 2 {
		t.Fatalf("targets %v", res.Targets)
	}
}

func TestInterrupted(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	res, err := Run(ctx, WithURL("http://"+srv.Addr().String()+"/"), WithDuration(time.Hour), WithConnections(4))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if res == nil || !res.Interrupted || res.Requests == 0 {
		t.Fatalf("result %+v", res)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		want string
	}{
		{"no target", nil, "no target"},
		{"zero connections", []Option{WithURL("http://x/"), WithConnections(0)}, "connections"},
		{"zero pipeline", []Option{WithURL("http://x/"), WithPipeline(0)}, "pipeline"},
		{"negative rate", []Option{WithURL("http://x/"), WithRate(-1)}, "rate"},
		{"bad method", []Option{WithURL("http://x/"), WithMethod("GE T")}, "method"},
		{"content-length header", []Option{WithURL("http://x/"), WithHeaders(Header{"Content-Length", "3"})}, "Content-Length"},
		{"tcp without payload", []Option{WithTargets("x:1"), WithTCP(0)}, "payload"},
		{"ftp", []Option{WithURL("ftp://x/")}, "not http or https"},
		{"stages at zero", []Option{WithURL("http://x/"), WithStages(Stage{Duration: time.Second})}, "sends no request"},
		{"bad port", []Option{WithURL("http://x:99999/")}, "port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.opts...)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a ConfigError about %q", err, tc.want)
			}
		})
	}
}

// TestOneDeadInstance: connections to an instance that refuses are
// counted as connect errors and retried; the live one carries the run.
func TestOneDeadInstance(t *testing.T) {
	live := startServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, order := range [][]string{{dead, live.Addr().String()}, {live.Addr().String(), dead}} {
		res := run(t, WithTargets(order...), WithURL("/"), WithDuration(300*time.Millisecond), WithConnections(4))
		if res.Requests == 0 || res.Errors.Connect == 0 || res.Errors.Total != res.Errors.Connect {
			t.Fatalf("targets %v: requests %d, errors %+v", order, res.Requests, res.Errors)
		}
	}
}

// TestRateSharesConnections: with -R the loop's connections share one
// schedule, as a client with a connection pool does. When one connection
// stalls, the requests due meanwhile go out on the others: only the
// request held on the stalled connection is slow. (With wrk2's schedule
// per connection, the ~75 requests due on it during the stall would be.)
func TestRateSharesConnections(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	var served atomic.Int32
	addr := rawServer(t, func(c net.Conn) {
		readRequests(c, func(int) bool {
			if served.Add(1) == 20 {
				time.Sleep(300 * time.Millisecond)
			}
			io.WriteString(c, ok)
			return true
		})
	})
	res := run(t, WithURL("http://"+addr+"/"), WithRequests(400), WithConnections(4), WithLoops(1),
		WithRate(1000), WithTimeout(5*time.Second))
	if res.Requests != 400 || res.Sent != 400 || res.Errors.Total != 0 {
		t.Fatalf("requests %d, sent %d, errors %+v", res.Requests, res.Sent, res.Errors)
	}
	slow := int64(0)
	for _, b := range res.Histogram().Distribution() {
		if b.From >= 100_000 {
			slow += b.Count
		}
	}
	if slow < 1 || slow > 10 {
		t.Fatalf("%d requests above 100ms (corrected), want the one held by the stalled connection", slow)
	}
}
