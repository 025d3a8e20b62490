package bench

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// parsed is what the parser made of one response.
type parsed struct {
	status int
	close  bool
}

// parseAll feeds stream to a parser in pieces of size step (0: all at once)
// and returns the responses, in order, and the first error. heads says which
// requests were HEAD; eof says whether the connection closes after stream.
func parseAll(stream string, step int, heads []bool, eof bool) ([]parsed, error) {
	var p responseParser
	var out []parsed
	head := func(i int) bool { return i < len(heads) && heads[i] }
	p.reset(head(0))
	b := []byte(stream)
	for len(b) > 0 {
		piece := b
		if step > 0 && step < len(b) {
			piece = b[:step]
		}
		b = b[len(piece):]
		for len(piece) > 0 {
			n, done, err := p.feed(piece)
			if err != nil {
				return out, err
			}
			if n == 0 && !done {
				return out, errors.New("feed made no progress")
			}
			piece = piece[n:]
			if done {
				out = append(out, parsed{p.Status, p.Close()})
				if p.Close() {
					if len(piece)+len(b) > 0 {
						return out, fmt.Errorf("%d bytes after a closing response", len(piece)+len(b))
					}
					return out, nil
				}
				p.reset(head(len(out)))
			}
		}
	}
	if eof {
		done, err := p.eof()
		if err != nil {
			return out, err
		}
		if done {
			out = append(out, parsed{p.Status, true})
		}
	}
	return out, nil
}

func TestResponseParser(t *testing.T) {
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
	tests := []struct {
		name    string
		stream  string
		heads   []bool
		eof     bool
		want    []parsed
		wantErr string
	}{
		{name: "content-length", stream: ok, want: []parsed{{200, false}}},
		{name: "pipelined", stream: ok + ok + ok, want: []parsed{{200, false}, {200, false}, {200, false}}},
		{name: "empty body", stream: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + ok, want: []parsed{{200, false}, {200, false}}},
		{name: "bare LF", stream: "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", want: []parsed{{200, false}}},
		{name: "no reason phrase", stream: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", want: []parsed{{200, false}}},
		{name: "header names any case", stream: "HTTP/1.1 201 Created\r\ncOnTeNt-LeNgTh:  3 \r\n\r\nabc", want: []parsed{{201, false}}},
		{
			name:   "chunked with extensions and trailers",
			stream: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\nY: z\r\n\r\n" + ok,
			want:   []parsed{{200, false}, {200, false}},
		},
		{name: "chunked, upper-case hex", stream: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1F\r\n" + strings.Repeat("x", 31) + "\r\n0\r\n\r\n", want: []parsed{{200, false}}},
		{name: "chunked wins over content-length, then close", stream: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", want: []parsed{{200, true}}},
		{name: "connection close", stream: "HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nhi", want: []parsed{{200, true}}},
		{name: "HTTP/1.0 closes", stream: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", want: []parsed{{200, true}}},
		{name: "HTTP/1.0 keep-alive", stream: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nhi" + ok, want: []parsed{{200, false}, {200, false}}},
		{name: "body until close", stream: "HTTP/1.1 200 OK\r\n\r\nall of this is body", eof: true, want: []parsed{{200, true}}},
		{name: "other transfer coding: until close", stream: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nmore than 3", eof: true, want: []parsed{{200, true}}},
		{name: "HEAD has no body", stream: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + ok, heads: []bool{true, false}, want: []parsed{{200, false}, {200, false}}},
		{name: "HEAD with chunked has no body", stream: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + ok, heads: []bool{true}, want: []parsed{{200, false}, {200, false}}},
		{name: "204 has no body", stream: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n" + ok, want: []parsed{{204, false}, {200, false}}},
		{name: "304 has no body", stream: "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n" + ok, want: []parsed{{304, false}, {200, false}}},
		{name: "1xx skipped", stream: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok, want: []parsed{{200, false}}},
		{name: "101 ends HTTP", stream: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", want: []parsed{{101, true}}},
		{name: "clean close between responses", stream: ok, eof: true, want: []parsed{{200, false}}},
		{name: "leading empty line", stream: "\r\n" + ok, want: []parsed{{200, false}}},

		{name: "bad status line", stream: "HTTP/2 200 OK\r\n\r\n", wantErr: "bad status line"},
		{name: "not HTTP", stream: "SSH-2.0-OpenSSH_9.2\r\n", wantErr: "bad status line"},
		{name: "bad content-length", stream: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", wantErr: "bad Content-Length"},
		{name: "conflicting content-length", stream: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", wantErr: "conflicting"},
		{name: "space before colon", stream: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", wantErr: "white space"},
		{name: "folded line", stream: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", wantErr: "folding"},
		{name: "bad chunk size", stream: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", wantErr: "bad chunk size"},
		{name: "chunk longer than size", stream: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n", wantErr: "longer than its size"},
		{name: "cut short", stream: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", eof: true, wantErr: "closed in the middle"},
		{name: "endless line", stream: "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine+10), wantErr: "line longer"},
	}
	for _, tc := range tests {
		for _, step := range []int{0, 1, 2, 3, 7, 64} {
			t.Run(fmt.Sprintf("%s/step%d", tc.name, step), func(t *testing.T) {
				got, err := parseAll(tc.stream, step, tc.heads, tc.eof)
				if tc.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
					}
					var pe *ParseError
					if !errors.As(err, &pe) {
						t.Fatalf("error %T is not a *ParseError", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			})
		}
	}
}

// FuzzResponseParser checks that the parser never panics, always makes
// progress, and reads the same responses however the stream is split.
func FuzzResponseParser(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s), uint8(1), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8, head bool) {
		heads := []bool{head}
		whole, errWhole := parseAll(string(data), 0, heads, true)
		split, errSplit := parseAll(string(data), int(step), heads, true)
		if (errWhole == nil) != (errSplit == nil) {
			t.Fatalf("whole: %v, split by %d: %v", errWhole, step, errSplit)
		}
		if fmt.Sprint(whole) != fmt.Sprint(split) {
			t.Fatalf("whole: %v, split by %d: %v", whole, step, split)
		}
	})
}
