package bench

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseTargets(t *testing.T) {
	files := map[string][]byte{"b.json": []byte(`{"x":1}`)}
	readFile := func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, errors.New("no such file")
	}
	in := "# comment\nGET http://h:1/a\nX-A: 1\n\nPOST http://h:1/b\nContent-Type: application/json\n@b.json\nHEAD /c\n"
	got, err := ParseTargets(strings.NewReader(in), readFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []Request{
		{Method: "GET", URL: "http://h:1/a", Headers: []Header{{"X-A", "1"}}},
		{Method: "POST", URL: "http://h:1/b", Headers: []Header{{"Content-Type", "application/json"}}, Body: []byte(`{"x":1}`), BodyFile: "b.json"},
		{Method: "HEAD", URL: "/c"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for in, msg := range map[string]string{
		"":                                  "no request",
		"X-A: 1\n":                          "want a request line",
		"GET ftp://h/\n":                    "scheme",
		"GET http://h/\nnocolon\n":          "Name: value",
		"GET http://h/\n@missing\n":         "no such file",
		"GET http://h/\n@b.json\n@b.json\n": "a second body file",
		"get http://h/\n":                   "want a request line",
		"GET http://h/?token=s3cret x\n":    "want a request line",
	} {
		_, err := ParseTargets(strings.NewReader(in), readFile)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", in, err, msg)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error shows a secret: %v", in, err)
		}
	}
}

// recorder is a net/http server that counts what each request carried.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int // "METHOD path header body"
}

func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	rec := &recorder{seen: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen[fmt.Sprintf("%s %s %s %s", r.Method, r.URL.Path, r.Header.Get("X-T"), b)]++
		rec.mu.Unlock()
		if r.URL.Path == "/missing" {
			w.WriteHeader(404)
		}
		io.WriteString(w, "hello")
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func TestTargetsRoundRobin(t *testing.T) {
	rec, srv := newRecorder(t)
	reqs := []Request{
		{Method: "GET", URL: srv.URL + "/a", Headers: []Header{{"X-T", "own"}}},
		{Method: "POST", URL: srv.URL + "/b", Body: []byte("body-b"), BodyFile: "f"},
		{Method: "HEAD", URL: srv.URL + "/c"},
		{Method: "GET", URL: srv.URL + "/missing"},
	}
	for _, pipeline := range []int{1, 3} {
		t.Run(fmt.Sprint("pipeline", pipeline), func(t *testing.T) {
			rec.mu.Lock()
			clear(rec.seen)
			rec.mu.Unlock()
			res := run(t, WithTargetRequests(false, reqs...), WithHeaders(Header{"X-T", "global"}),
				WithRequests(400), WithConnections(4), WithPipeline(pipeline), WithTimeout(10*time.Second))
			if res.Requests != 400 || res.Errors.Total != 0 || len(res.ByTarget) != 4 {
				t.Fatalf("requests %d, errors %+v, by target %d", res.Requests, res.Errors, len(res.ByTarget))
			}
			for i, bt := range res.ByTarget {
				if bt.Sent != 100 || bt.Requests != 100 || bt.Latency.Count != 100 {
					t.Errorf("target %d: %+v, want 100 sent and answered (round-robin)", i, bt)
				}
			}
			if res.ByTarget[3].Status["404"] != 100 || res.ByTarget[0].Status["200"] != 100 {
				t.Errorf("status by target: %v, %v", res.ByTarget[0].Status, res.ByTarget[3].Status)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			want := map[string]int{"GET /a own ": 100, "POST /b global body-b": 100, "HEAD /c global ": 100, "GET /missing global ": 100}
			if fmt.Sprint(rec.seen) != fmt.Sprint(want) {
				t.Errorf("server saw %v, want %v", rec.seen, want)
			}
		})
	}
}

func TestTargetsRandomAndPaced(t *testing.T) {
	_, srv := newRecorder(t)
	reqs := []Request{{Method: "GET", URL: srv.URL + "/a"}, {Method: "GET", URL: srv.URL + "/b"}}
	res := run(t, WithTargetRequests(true, reqs...), WithRequests(600), WithRate(3000), WithConnections(4), WithTimeout(10*time.Second))
	if res.Requests != 600 {
		t.Fatalf("requests %d, errors %+v", res.Requests, res.Errors)
	}
	a, b := res.ByTarget[0].Requests, res.ByTarget[1].Requests
	// Binomial(600, 1/2): below 200 on one side is beyond 6 standard deviations.
	if a+b != 600 || a < 200 || b < 200 {
		t.Errorf("random split %d / %d", a, b)
	}
}

// TestTargetsWithServiceAddresses: paths go to every address, each with
// its own Host.
func TestTargetsWithServiceAddresses(t *testing.T) {
	a, b := startServer(t), startServer(t)
	reqs := []Request{{Method: "GET", URL: "/x"}, {Method: "GET", URL: "/y"}}
	res := run(t, WithTargets(a.Addr().String(), b.Addr().String()), WithTargetRequests(false, reqs...),
		WithRequests(400), WithConnections(4))
	sa, sb := stopServer(t, a), stopServer(t, b)
	if res.Requests != 400 || sa.Requests == 0 || sb.Requests == 0 || sa.Requests+sb.Requests != 400 {
		t.Fatalf("client %d, servers %d + %d", res.Requests, sa.Requests, sb.Requests)
	}
	if res.ByTarget[0].Requests != 200 || res.ByTarget[1].Requests != 200 {
		t.Errorf("by target %+v", res.ByTarget)
	}
}
