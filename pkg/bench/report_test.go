package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestReportAndHDR(t *testing.T) {
	srv := startServer(t)
	for _, rate := range []float64{0, 2000} {
		opts := []Option{WithURL("http://" + srv.Addr().String() + "/"), WithRequests(300), WithConnections(3),
			WithHeaders(Header{"Authorization", "Bearer secret-token"})}
		if rate > 0 {
			opts = append(opts, WithRate(rate))
		}
		res := run(t, opts...)
		var page bytes.Buffer
		if err := WriteReport(&page, res, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		html := page.String()
		for _, want := range []string{"<svg", "<path", "p99.9", "Authorization: &lt;redacted&gt;", "200"} {
			if !strings.Contains(html, want) {
				t.Errorf("rate %g: report lacks %q", rate, want)
			}
		}
		if rate > 0 && !strings.Contains(html, "uncorrected") {
			t.Errorf("rate %g: report lacks the uncorrected curve", rate)
		}
		// Self-contained: nothing loaded from elsewhere.
		for _, bad := range []string{"<script", "<link", "src=", "@import", "secret-token"} {
			if strings.Contains(html, bad) {
				t.Errorf("report contains %q", bad)
			}
		}
		var hgrm bytes.Buffer
		if err := WriteHDR(&hgrm, res); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(hgrm.String(), "Value") || !strings.Contains(hgrm.String(), "Percentile") {
			t.Errorf("hgrm output: %.200s", hgrm.String())
		}
	}
}

func TestWriteHDREmpty(t *testing.T) {
	if err := WriteHDR(&bytes.Buffer{}, &Result{}); err == nil {
		t.Fatal("no error for an empty result")
	}
}

func TestFormatUS(t *testing.T) {
	for _, tc := range []struct {
		us   float64
		want string
	}{{0, "0µs"}, {453, "453µs"}, {1049, "1.05ms"}, {2_490_000, "2.49s"}} {
		if got := FormatUS(tc.us); got != tc.want {
			t.Errorf("FormatUS(%g) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

// fakeHealth embeds the interface and answers Service from a table.
type fakeHealth struct {
	HealthService
	entries []*api.ServiceEntry
	err     error
	passing bool
}

func (f *fakeHealth) Service(service, tag string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	f.passing = passingOnly
	return f.entries, nil, f.err
}

func TestResolveService(t *testing.T) {
	entry := func(node, svc string, port int) *api.ServiceEntry {
		return &api.ServiceEntry{Node: &api.Node{Address: node}, Service: &api.AgentService{Address: svc, Port: port}}
	}
	tests := []struct {
		name    string
		entries []*api.ServiceEntry
		err     error
		want    string
		wantErr string
	}{
		{"service address wins", []*api.ServiceEntry{entry("10.0.0.1", "10.0.1.7", 8080), entry("10.0.0.2", "", 9090)}, nil, "10.0.1.7:8080 10.0.0.2:9090", ""},
		{"duplicates and portless dropped", []*api.ServiceEntry{entry("n", "a", 1), entry("n", "a", 1), entry("n", "b", 0)}, nil, "a:1", ""},
		{"none passing", nil, nil, "", "no passing instance"},
		{"consul error", nil, errors.New("boom"), "", "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHealth{entries: tc.entries, err: tc.err}
			got, err := ResolveService(context.Background(), h, "greeter")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !h.passing {
				t.Error("asked Consul for all instances, not only passing ones")
			}
			if s := strings.Join(got, " "); s != tc.want && s != strings.Join(reverse(strings.Fields(tc.want)), " ") {
				t.Fatalf("got %q, want %q", s, tc.want)
			}
		})
	}
}

func reverse(s []string) []string {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return s
}

func TestParseURL(t *testing.T) {
	tests := []struct{ in, hostPort, host, path, err string }{
		{"http://127.0.0.1:8080/a?b=c", "127.0.0.1:8080", "127.0.0.1:8080", "/a?b=c", ""},
		{"localhost", "localhost:80", "localhost", "/", ""},
		{"http://[::1]:9000", "[::1]:9000", "[::1]:9000", "/", ""},
		{"ftp://x/", "", "", "", "scheme"},
		{"http://", "", "", "", "no host"},
		{"http://x:0/", "", "", "", "port"},
	}
	for _, tc := range tests {
		got, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if got.HostPort != tc.hostPort || got.Host != tc.host || got.Path != tc.path {
			t.Errorf("ParseURL(%q) = %+v", tc.in, got)
		}
	}
}

func TestBuildRequest(t *testing.T) {
	got := string(buildRequest("POST", "h:1", "/p", []Header{{"X-A", "1"}, {"User-Agent", "me"}}, []byte("body")))
	want := "POST /p HTTP/1.1\r\nHost: h:1\r\nX-A: 1\r\nUser-Agent: me\r\nContent-Length: 4\r\n\r\nbody"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
