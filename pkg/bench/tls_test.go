package bench

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTLSServer(t *testing.T, cfg func(*tls.Config)) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello over tls")
	}))
	srv.EnableHTTP2 = false
	srv.TLS = &tls.Config{NextProtos: []string{"http/1.1"}}
	if cfg != nil {
		cfg(srv.TLS)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

func TestHTTPS(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, engine := range engineNames() {
			t.Run(tls.VersionName(version)+"/"+engine, func(t *testing.T) {
				srv, pool := newTLSServer(t, func(c *tls.Config) { c.MaxVersion = version })
				// httptest's certificate is for example.com and 127.0.0.1.
				for _, pipeline := range []int{1, 4} {
					res := run(t, WithURL(srv.URL+"/x"), WithRequests(2000), WithConnections(4), WithPipeline(pipeline),
						WithTLSConfig(&tls.Config{RootCAs: pool}), WithEngine(engine), WithTimeout(10*time.Second))
					if res.Requests != 2000 || res.Errors.Total != 0 || res.Status["200"] != 2000 {
						t.Fatalf("pipeline %d: requests %d, errors %+v, status %v", pipeline, res.Requests, res.Errors, res.Status)
					}
					if res.TLS == nil || res.TLS.Version != tls.VersionName(version) || res.TLS.Handshakes != 4 ||
						res.TLS.ALPN != "http/1.1" || res.TLS.Connect.Count != 4 {
						t.Fatalf("tls info %+v", res.TLS)
					}
				}
			})
		}
	}
}

// TestHTTPSNewConnectionPerRequest: every request its own handshake; the
// reconnects resume the session.
func TestHTTPSNewConnectionPerRequest(t *testing.T) {
	srv, pool := newTLSServer(t, nil)
	res := run(t, WithURL(srv.URL+"/"), WithRequests(200), WithConnections(2), WithHeaders(Header{"Connection", "close"}),
		WithTLSConfig(&tls.Config{RootCAs: pool}), WithTimeout(10*time.Second))
	if res.Requests != 200 || res.Errors.Total != 0 {
		t.Fatalf("requests %d, errors %+v", res.Requests, res.Errors)
	}
	if res.TLS.Handshakes < 200 || res.TLS.Resumed < 150 {
		t.Errorf("handshakes %d, resumed %d: want one per request, nearly all resumed", res.TLS.Handshakes, res.TLS.Resumed)
	}
}

func TestHTTPSHandshakeFailures(t *testing.T) {
	srv, pool := newTLSServer(t, nil)
	old, _ := newTLSServer(t, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS11 })
	tests := []struct {
		name string
		url  string
		cfg  *tls.Config
		want string
	}{
		{"unknown authority", srv.URL, &tls.Config{}, "unknown authority"},
		{"name mismatch", srv.URL, &tls.Config{RootCAs: pool, ServerName: "other.example"}, "name mismatch"},
		{"protocol version", old.URL, &tls.Config{RootCAs: pool}, "protocol version"},
		{"plain server", "https://" + startServer(t).Addr().String() + "/", &tls.Config{RootCAs: pool}, "TLS handshake"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(t.Context(), WithURL(tc.url), WithRequests(10), WithConnections(2), WithTLSConfig(tc.cfg), WithTimeout(5*time.Second))
			var te *TLSError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *TLSError saying %q", err, tc.want)
			}
		})
	}
	// -k: no verification.
	res := run(t, WithURL(srv.URL), WithRequests(10), WithConnections(1), WithTLSConfig(&tls.Config{InsecureSkipVerify: true}))
	if res.Requests != 10 {
		t.Errorf("-k: %d requests, errors %+v", res.Requests, res.Errors)
	}
}

// TestHTTPSClientCertificate: --cert/--key present a client certificate
// to a server that requires one; without it the handshake fails.
func TestHTTPSClientCertificate(t *testing.T) {
	client, err := NewSelfSigned("bench-client")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	der, err := x509.MarshalECPrivateKey(client.Cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certFile, client.PEM, 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	leaf, _ := x509.ParseCertificate(client.Cert.Certificate[0])
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(leaf)
	srv, pool := newTLSServer(t, func(c *tls.Config) {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = clientCAs
	})
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	_ = pool
	cfg, err := ClientTLS{CACert: caFile, Cert: certFile, Key: keyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	res := run(t, WithURL(srv.URL), WithRequests(50), WithConnections(2), WithTLSConfig(cfg))
	if res.Requests != 50 || res.Errors.Total != 0 {
		t.Fatalf("with a client certificate: %d requests, errors %+v", res.Requests, res.Errors)
	}
	noCert, _ := ClientTLS{CACert: caFile}.Config()
	res, err = Run(t.Context(), WithURL(srv.URL), WithRequests(50), WithConnections(2), WithTLSConfig(noCert), WithTimeout(5*time.Second))
	// TLS 1.3: the client's handshake ends before the server checks the
	// certificate, so the refusal arrives as an alert on the first read.
	if err == nil && (res.Requests != 0 || res.Errors.Total == 0) {
		t.Fatalf("without a client certificate: %d requests, errors %+v", res.Requests, res.Errors)
	}
}
