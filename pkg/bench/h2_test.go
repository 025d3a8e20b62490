package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

func h2Handler(proto *atomic.Value) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
		}
		io.WriteString(w, "hello h2 "+string(b))
	})
}

// TestH2C: HTTP/2 with prior knowledge against x/net/http2's server.
func TestH2C(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewServer(h2c.NewHandler(h2Handler(&proto), &http2.Server{MaxConcurrentStreams: 8}))
	defer srv.Close()
	for _, streams := range []int{1, 10} {
		res := run(t, WithURL(srv.URL+"/x"), WithHTTP2(streams), WithRequests(3000), WithConnections(3),
			WithMethod("POST"), WithBody([]byte("body")), WithTimeout(10*time.Second))
		if res.Requests != 3000 || res.Errors.Total != 0 || res.Status["200"] != 3000 {
			t.Fatalf("streams %d: requests %d, errors %+v, status %v", streams, res.Requests, res.Errors, res.Status)
		}
		if res.Settings.Protocol != "h2c" || proto.Load() != "HTTP/2.0" {
			t.Fatalf("protocol %q, server saw %v", res.Settings.Protocol, proto.Load())
		}
	}
	res := run(t, WithURL(srv.URL+"/missing"), WithHTTP2(4), WithRequests(100), WithConnections(1), WithRate(2000))
	if res.Status["404"] != 100 || res.LatencyUncorrected == nil {
		t.Fatalf("paced: status %v", res.Status)
	}
}

// TestH2OverTLS: h2 chosen by ALPN, against x/net/http2's server.
func TestH2OverTLS(t *testing.T) {
	var proto atomic.Value
	srv := httptest.NewUnstartedServer(h2Handler(&proto))
	if err := http2.ConfigureServer(srv.Config, &http2.Server{}); err != nil {
		t.Fatal(err)
	}
	srv.TLS = srv.Config.TLSConfig
	srv.StartTLS()
	defer srv.Close()
	res := run(t, WithURL(srv.URL+"/"), WithHTTP2(8), WithRequests(2000), WithConnections(2),
		WithTLSConfig(&tls.Config{InsecureSkipVerify: true}), WithTimeout(10*time.Second))
	if res.Requests != 2000 || res.Errors.Total != 0 || res.TLS.ALPN != "h2" || res.Settings.Protocol != "h2" || proto.Load() != "HTTP/2.0" {
		t.Fatalf("requests %d, errors %+v, tls %+v, protocol %q", res.Requests, res.Errors, res.TLS, res.Settings.Protocol)
	}
}

// TestH2Refused: servers that do not speak HTTP/2 say so.
func TestH2Refused(t *testing.T) {
	plain := startServer(t) // microctl serve: HTTP/1.1 only
	_, err := Run(t.Context(), WithURL("http://"+plain.Addr().String()+"/"), WithHTTP2(1), WithRequests(5), WithConnections(1), WithTimeout(5*time.Second))
	if !errors.Is(err, errH2Refused) || !strings.Contains(err.Error(), "HTTP/1.1 400") {
		t.Errorf("h2c to an HTTP/1.1 server: %v", err)
	}
	// A server that closes at once: the run still ends, with errors.
	closer := rawServer(t, func(c net.Conn) { c.Close() })
	res, err := Run(t.Context(), WithURL("http://"+closer+"/"), WithHTTP2(1), WithRequests(5), WithConnections(1), WithTimeout(5*time.Second))
	if err != nil || res.Requests != 0 || res.Errors.Closed == 0 {
		t.Errorf("h2c to a server that closes: %v, %+v", err, res)
	}
	tlsSrv, pool := newTLSServer(t, nil) // ALPN http/1.1 only
	_, err = Run(t.Context(), WithURL(tlsSrv.URL), WithHTTP2(1), WithRequests(5), WithConnections(1),
		WithTLSConfig(&tls.Config{RootCAs: pool}), WithTimeout(5*time.Second))
	if !errors.Is(err, errH2Refused) {
		t.Errorf("h2 to a server without h2 in ALPN: %v", err)
	}
}

// TestH2WindowGivenBackInBulk: received data is acknowledged with one
// WINDOW_UPDATE per half window, on the connection and on a stream still
// open, never one per DATA frame; and never later than that, or a long
// response would stall.
func TestH2WindowGivenBackInBulk(t *testing.T) {
	h := newH2Conn()
	h.refill = 100
	h.ready = true
	h.request(newH2Req("GET", "http", "x", "/", nil, nil), flight{})
	h.request(newH2Req("GET", "http", "x", "/", nil, nil), flight{})
	h.w.Reset()

	var in strings.Builder
	fw := http2.NewFramer(&in, nil)
	// Stream 1 stays open: 3 frames of 40 bytes. Stream 3 ends with 40.
	for i := 0; i < 3; i++ {
		fw.WriteData(1, false, make([]byte, 40))
	}
	fw.WriteData(3, true, make([]byte, 40))
	var done int
	if err := h.feed([]byte(in.String()), func(e h2event) { done++ }); err != nil {
		t.Fatal(err)
	}
	if done != 1 {
		t.Fatalf("%d responses completed, want 1 (stream 3)", done)
	}
	// Written: the connection's update after 120 bytes (>= 100), and
	// stream 1's after its 120; stream 3's data (40) waits in the
	// connection's count.
	fr := http2.NewFramer(nil, &h.w)
	var got []string
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		wu, ok := f.(*http2.WindowUpdateFrame)
		if !ok {
			t.Fatalf("unexpected frame %v", f)
		}
		got = append(got, fmt.Sprintf("%d:%d", wu.StreamID, wu.Increment))
	}
	if want := []string{"0:120", "1:120"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("window updates %v, want %v", got, want)
	}
	if h.unacked != 40 {
		t.Fatalf("connection has %d unacknowledged bytes, want 40", h.unacked)
	}
}
