package bench

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Request is one entry of a targets file (--targets): a method, a URL (a
// path alone with --service), its own headers and body.
type Request struct {
	Method  string
	URL     string
	Headers []Header
	Body    []byte
	// BodyFile is the @file the body came from, for display.
	BodyFile string
}

// ParseTargets reads targets in vegeta's HTTP format:
//
//	GET http://127.0.0.1:8080/a
//	X-Account: 1
//
//	POST http://127.0.0.1:8080/b
//	Content-Type: application/json
//	@body.json
//
// A request starts on a line "METHOD URL" (the method in capitals); the
// lines after it, up to a blank line or the next request, are headers
// ("Name: value") or "@FILE", a file whose content is the body (read with
// readFile). Lines starting with # are comments.
func ParseTargets(r io.Reader, readFile func(string) ([]byte, error)) ([]Request, error) {
	var out []Request
	var cur *Request
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "":
			cur = nil
			continue
		case strings.HasPrefix(text, "#"):
			continue
		}
		if m, u, ok := requestLine(text); ok {
			if _, err := checkTargetURL(u); err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			out = append(out, Request{Method: m, URL: u})
			cur = &out[len(out)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("line %d: %q: want a request line, METHOD URL (e.g. GET http://127.0.0.1:8080/)", line, RedactURL(text))
		}
		if file, ok := strings.CutPrefix(text, "@"); ok {
			if cur.BodyFile != "" {
				return nil, fmt.Errorf("line %d: a second body file for %s %s", line, cur.Method, RedactURL(cur.URL))
			}
			b, err := readFile(strings.TrimSpace(file))
			if err != nil {
				return nil, fmt.Errorf("line %d: body: %w", line, err)
			}
			cur.Body, cur.BodyFile = b, strings.TrimSpace(file)
			continue
		}
		h, err := ParseHeader(text)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if !strings.EqualFold(h.Name, "content-length") && !strings.EqualFold(h.Name, "transfer-encoding") {
			cur.Headers = append(cur.Headers, h)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no request: want blocks starting with METHOD URL")
	}
	return out, nil
}

// requestLine splits "METHOD URL": the method is capital letters (vegeta's
// rule, which tells it from a header line).
func requestLine(s string) (method, url string, ok bool) {
	m, rest, found := strings.Cut(s, " ")
	if !found || m == "" {
		return "", "", false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return "", "", false
		}
	}
	rest = strings.TrimSpace(rest)
	if rest == "" || strings.Contains(rest, " ") {
		return "", "", false
	}
	return m, rest, true
}

// checkTargetURL accepts a URL ParseURL takes, or a path alone (for
// --service).
func checkTargetURL(u string) (*Target, error) {
	if strings.HasPrefix(u, "/") {
		return nil, nil
	}
	return ParseURL(u)
}

// TargetResult is one target's share of a run with --targets: an element
// of `by_target` in `microctl bench -o json`.
type TargetResult struct {
	Method   string            `json:"method"`
	URL      string            `json:"url"` // credentials redacted
	Sent     uint64            `json:"requests_sent"`
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	Status   map[string]uint64 `json:"status"`
	Latency  Latency           `json:"latency"`
}
