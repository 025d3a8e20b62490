package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	mnet "github.com/microctl/microctl/pkg/net"
)

func TestParseRequestHead(t *testing.T) {
	tests := []struct {
		name string
		head string
		want request
		bad  bool
	}{
		{"get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", request{}, false},
		{"head", "HEAD /x HTTP/1.1\r\n\r\n", request{head: true}, false},
		{"http/1.0 closes", "GET / HTTP/1.0\r\n\r\n", request{close: true}, false},
		{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", request{}, false},
		{"close", "GET / HTTP/1.1\r\nconnection: Close\r\n\r\n", request{close: true}, false},
		{"length", "POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", request{length: 12}, false},
		{"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", request{chunked: true}, false},
		{"both framings", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", request{}, true},
		{"gzip coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", request{}, true},
		{"bad version", "GET / HTTP/2.0\r\n\r\n", request{}, true},
		{"no target", "GET HTTP/1.1\r\n\r\n", request{}, true},
		{"bad header", "GET / HTTP/1.1\r\nnocolon\r\n\r\n", request{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRequestHead([]byte(tc.head))
			if tc.bad {
				if err == nil {
					t.Fatalf("no error for %q", tc.head)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzServerRequests(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		// Whatever arrives, in whatever pieces, the server must not panic.
		s, err := NewServer()
		if err != nil {
			t.Fatal(err)
		}
		c := &fakeConn{ctx: &serverConn{}}
		for len(data) > 0 && !c.closed {
			n := min(int(step)+1, len(data))
			s.OnData(c, data[:n])
			data = data[n:]
		}
		s.eng.Stop(t.Context())
	})
}

// fakeConn is a Conn outside any engine, for driving a Handler directly.
type fakeConn struct {
	mnet.Conn
	ctx    any
	out    []byte
	closed bool
}

func (c *fakeConn) Write(b []byte)   { c.out = append(c.out, b...) }
func (c *fakeConn) Close()           { c.closed = true }
func (c *fakeConn) Context() any     { return c.ctx }
func (c *fakeConn) SetContext(v any) { c.ctx = v }
func (c *fakeConn) Loop() mnet.Loop  { return fakeLoop{} }

type fakeLoop struct{ mnet.Loop }

func (fakeLoop) Index() int { return 0 }

// AfterFunc schedules nothing: the tests drive time themselves.
func (fakeLoop) AfterFunc(time.Duration, func()) *mnet.Timer { return nil }

func TestServerAnswersEveryRequest(t *testing.T) {
	tests := []struct {
		name      string
		stream    string
		responses int
		closed    bool
		status    string
	}{
		{"pipelined", "GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\n\r\n", 3, false, "200"},
		{"length body", "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n", 2, false, "200"},
		{"chunked body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: x\r\n\r\nGET / HTTP/1.1\r\n\r\n", 2, false, "200"},
		{"close", "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1, true, "200"},
		{"bad request", "NONSENSE\r\n\r\n", 1, true, "400"},
	}
	for _, tc := range tests {
		for _, step := range []int{1, 5, 1 << 20} {
			t.Run(fmt.Sprintf("%s/step%d", tc.name, step), func(t *testing.T) {
				s, err := NewServer(WithServerLoops(1))
				if err != nil {
					t.Fatal(err)
				}
				defer s.eng.Stop(context.Background())
				s.loops[0].tick(fakeLoop{})
				c := &fakeConn{ctx: &serverConn{}}
				data := []byte(tc.stream)
				for len(data) > 0 && !c.closed {
					n := min(step, len(data))
					s.OnData(c, data[:n])
					data = data[n:]
				}
				out := string(c.out)
				if got := strings.Count(out, "HTTP/1.1 "+tc.status); got != tc.responses || c.closed != tc.closed {
					t.Fatalf("%d responses %s, closed %v; want %d, %v\n%s", got, tc.status, c.closed, tc.responses, tc.closed, out)
				}
			})
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://h/p", "http://h/p"},
		{"http://h/p?a=1&b=2", "http://h/p?a=1&b=2"},
		{"http://h/p?api_key=s&x=1", "http://h/p?api_key=REDACTED&x=1"},
		{"http://h/p?access_token=s&Signature=t&X-Amz-Security-Token=u", "http://h/p?access_token=REDACTED&Signature=REDACTED&X-Amz-Security-Token=REDACTED"},
		{"http://u:pw@h/", "http://u:REDACTED@h/"},
		{"/p?password=x", "/p?password=REDACTED"},
		{"http://h/%zz?token=x", "http://h/%zz?<redacted>"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestHeaderRedacted(t *testing.T) {
	for _, name := range []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Auth-Token", "Api-Key", "X-Session-Id", "X-Client-Secret", "X-CSRF-Token"} {
		if got := (Header{name, "v"}).Redacted(); got != name+": <redacted>" {
			t.Errorf("%s: %q", name, got)
		}
	}
	for _, name := range []string{"Content-Type", "Accept", "X-Request-Id", "Micro-Endpoint"} {
		if got := (Header{name, "v"}).Redacted(); got != name+": v" {
			t.Errorf("%s: %q", name, got)
		}
	}
}
