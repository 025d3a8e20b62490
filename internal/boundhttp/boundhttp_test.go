package boundhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// silent accepts connections and never answers. It is
// testenv.SilentServer's twin: this package cannot import testenv, which
// imports pkg/registry, which is built on this package.
func silent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func client(o Options) *http.Client {
	return &http.Client{Transport: New(&http.Transport{}, o)}
}

func TestTimeouts(t *testing.T) {
	addr := silent(t)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest never comes
	}))
	defer stall.Close()

	t.Run("no answer at all", func(t *testing.T) {
		c := client(Options{Peer: "Consul", Addr: addr, Timeout: 50 * time.Millisecond})
		_, err := c.Get("http://" + addr + "/v1/agent/self")
		var te *TimeoutError
		if !errors.As(err, &te) || te.Error() != "Consul at "+addr+" did not answer within 50ms" {
			t.Fatalf("err = %v, want a TimeoutError", err)
		}
	})
	t.Run("headers, then a stalled body", func(t *testing.T) {
		c := client(Options{Peer: "Consul", Addr: "x", Timeout: 100 * time.Millisecond})
		resp, err := c.Get(stall.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		var te *TimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("reading the body: %v, want a TimeoutError", err)
		}
	})
	t.Run("a stream outlives the bound once its headers are in", func(t *testing.T) {
		// Lines arrive every 30ms for longer than the 100ms bound, as a
		// followed log does.
		lines := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			for i := 0; i < 10; i++ {
				fmt.Fprintf(w, "line %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(30 * time.Millisecond)
			}
		}))
		defer lines.Close()
		c := client(Options{Peer: "the Docker Engine", Addr: "x", Timeout: 100 * time.Millisecond})
		req, _ := http.NewRequestWithContext(Stream(context.Background()), "GET", lines.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || strings.Count(string(b), "\n") != 10 {
			t.Fatalf("read %q, %v: want all 10 lines", b, err)
		}
		// Without Stream the same body is cut at the bound.
		resp, err = c.Get(lines.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var te *TimeoutError
		if _, err := io.ReadAll(resp.Body); !errors.As(err, &te) {
			t.Fatalf("plain request: %v, want a TimeoutError", err)
		}
	})
	t.Run("a stream that never answers still times out", func(t *testing.T) {
		c := client(Options{Peer: "the Docker Engine", Addr: addr, Timeout: 50 * time.Millisecond})
		req, _ := http.NewRequestWithContext(Stream(context.Background()), "GET", "http://"+addr+"/", nil)
		var te *TimeoutError
		if _, err := c.Do(req); !errors.As(err, &te) {
			t.Fatalf("err = %v, want a TimeoutError", err)
		}
	})
	t.Run("a blocking query gets its wait on top", func(t *testing.T) {
		c := client(Options{Peer: "Consul", Addr: addr, Timeout: 20 * time.Millisecond,
			Extra: func(r *http.Request) time.Duration {
				if r.URL.Query().Has("index") {
					return 30 * time.Millisecond
				}
				return 0
			}})
		_, err := c.Get("http://" + addr + "/v1/health/state/any?index=5&wait=30ms")
		if err == nil || !strings.Contains(err.Error(), "did not answer within 50ms") {
			t.Fatalf("err = %v, want the bound to be 20ms + 30ms", err)
		}
	})
	t.Run("the caller's cancellation is not a timeout", func(t *testing.T) {
		c := client(Options{Peer: "Consul", Addr: addr, Timeout: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		_, err := c.Do(req)
		var te *TimeoutError
		if errors.As(err, &te) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("a sticky request's timeout fails the next at once", func(t *testing.T) {
		c := client(Options{Peer: "the Docker Engine", Addr: addr, Timeout: 30 * time.Millisecond,
			Sticky: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/_ping") }})
		if _, err := c.Get("http://" + addr + "/_ping"); err == nil {
			t.Fatal("ping answered")
		}
		// Timeout of an hour would hang the test if the request were sent.
		c.Transport.(*transport).o.Timeout = time.Hour
		_, err := c.Get("http://" + addr + "/v1.41/info")
		var te *TimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("err = %v, want the ping's TimeoutError again", err)
		}
	})
}

func TestWrongPeer(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html></html>"))
	}))
	defer srv.Close()
	c := client(Options{Peer: "Consul", WrongPeer: "a Consul agent", Addr: "A",
		Identify: func(_ *http.Request, r *http.Response) string {
			if strings.Contains(r.Header.Get("Content-Type"), "html") {
				return "HTML"
			}
			return ""
		}})
	for i := 0; i < 2; i++ {
		_, err := c.Get(srv.URL)
		var we *WrongPeerError
		if !errors.As(err, &we) || we.Error() != "the server at A is not a Consul agent (HTML)" {
			t.Fatalf("request %d: %v, want a WrongPeerError", i, err)
		}
	}
	if n != 1 {
		t.Errorf("the server got %d requests; once it is known not to be Consul, none more should go", n)
	}
}
