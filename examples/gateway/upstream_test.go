package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// deadAddr is a loopback address nothing listens on: a connection to it is
// refused, as one to an instance that just left.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUpstreamRetriesOnceOnAnotherInstance(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer live.Close()
	liveAddr := strings.TrimPrefix(live.URL, "http://")

	tests := []struct {
		name        string
		addrs       []string
		method      string
		body        string
		wantCode    int
		wantRetries int64
		wantErrors  int64
	}{
		{"GET to a dead instance is retried on the live one", []string{deadAddr(t), liveAddr}, "GET", "", 200, 1, 0},
		{"HEAD too", []string{deadAddr(t), liveAddr}, "HEAD", "", 200, 1, 0},
		{"a POST is not replayed", []string{deadAddr(t), liveAddr}, "POST", "{}", 502, 0, 1},
		{"once only: two dead instances give 502", []string{deadAddr(t), deadAddr(t)}, "GET", "", 502, 1, 1},
		{"no other instance: 502 without a retry", []string{deadAddr(t)}, "GET", "", 502, 0, 1},
		{"a live instance needs no retry", []string{liveAddr}, "GET", "", 200, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var st stats
			p := &pool{addrs: tt.addrs}
			// Start on the first address: pick adds one before use.
			p.next.Store(uint64(len(tt.addrs)) - 1)
			h := newUpstream(p, &st, "go.micro.srv.greeter")
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/", body))
			if rec.Code != tt.wantCode {
				t.Errorf("status %d, want %d (%s)", rec.Code, tt.wantCode, rec.Body)
			}
			if got := st.Retries.Load(); got != tt.wantRetries {
				t.Errorf("retries %d, want %d", got, tt.wantRetries)
			}
			if got := st.UpstreamErrors.Load(); got != tt.wantErrors {
				t.Errorf("upstream errors %d, want %d", got, tt.wantErrors)
			}
		})
	}
}

func TestUpstreamNoInstance(t *testing.T) {
	var st stats
	rec := httptest.NewRecorder()
	newUpstream(&pool{}, &st, "go.micro.srv.greeter").ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || st.NoInstance.Load() != 1 {
		t.Errorf("status %d, no_instance %d; want 503 and 1", rec.Code, st.NoInstance.Load())
	}
}
