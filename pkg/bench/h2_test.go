package bench

import (
	"crypto/tls"
	"errors"
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
