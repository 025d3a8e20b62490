package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
			h := newUpstream(p, &st, "go.micro.srv.greeter", defaultUpstreamTimeouts)
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
	newUpstream(&pool{}, &st, "go.micro.srv.greeter", defaultUpstreamTimeouts).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || st.NoInstance.Load() != 1 {
		t.Errorf("status %d, no_instance %d; want 503 and 1", rec.Code, st.NoInstance.Load())
	}
}

// TestUpstreamRetriesAnInstanceThatNeverAnswers: an instance on a node cut
// off from the network takes requests (a kept-alive connection) and never
// answers; after the response timeout the request goes to another one.
func TestUpstreamRetriesAnInstanceThatNeverAnswers(t *testing.T) {
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			go func() { <-stop; c.Close() }() // reads nothing, answers nothing
		}
	}()
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer live.Close()

	var st stats
	p := &pool{addrs: []string{hung.Addr().String(), strings.TrimPrefix(live.URL, "http://")}}
	p.next.Store(1)
	h := newUpstream(p, &st, "go.micro.srv.greeter", upstreamTimeouts{connect: time.Second, response: 100 * time.Millisecond})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || rec.Body.String() != "hello" || st.Retries.Load() != 1 || st.UpstreamErrors.Load() != 0 {
		t.Errorf("status %d body %q, retries %d, upstream errors %d; want 200 hello 1 0", rec.Code, rec.Body, st.Retries.Load(), st.UpstreamErrors.Load())
	}
}

func TestGatewayTimeoutFlags(t *testing.T) {
	tests := []struct {
		env     map[string]string
		args    []string
		want    upstreamTimeouts
		wantErr string
	}{
		{nil, nil, defaultUpstreamTimeouts, ""},
		{map[string]string{"GATEWAY_CONNECT_TIMEOUT": "300ms", "GATEWAY_RESPONSE_TIMEOUT": "1s"}, nil, upstreamTimeouts{300 * time.Millisecond, time.Second}, ""},
		{map[string]string{"GATEWAY_CONNECT_TIMEOUT": "300ms"}, []string{"--connect_timeout", "2s", "--response_timeout", "0"}, upstreamTimeouts{2 * time.Second, 0}, ""},
		{map[string]string{"GATEWAY_CONNECT_TIMEOUT": "soon"}, nil, upstreamTimeouts{}, "GATEWAY_CONNECT_TIMEOUT"},
		{nil, []string{"--connect_timeout", "0"}, upstreamTimeouts{}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.env, tt.args), func(t *testing.T) {
			t.Setenv("GATEWAY_CONNECT_TIMEOUT", "")
			t.Setenv("GATEWAY_RESPONSE_TIMEOUT", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			c, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || c.upstream != tt.want {
				t.Errorf("got %+v (%v), want %+v", c.upstream, err, tt.want)
			}
		})
	}
}
