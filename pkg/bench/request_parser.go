package bench

import (
	"bytes"
	"errors"
)

// request is what the built-in server needs to know about a request.
type request struct {
	head    bool  // HEAD: answer without a body
	close   bool  // Connection: close, or HTTP/1.0 without keep-alive
	chunked bool  // Transfer-Encoding: chunked body
	length  int64 // Content-Length body
}

var errBadRequest = errors.New("bad request")

// parseRequestHead parses a request line and header fields, up to and
// including the blank line.
func parseRequestHead(head []byte) (request, error) {
	var req request
	eol := bytes.IndexByte(head, '\n')
	if eol < 0 {
		return req, errBadRequest
	}
	line := bytes.TrimSuffix(head[:eol], []byte("\r"))
	head = head[eol+1:]
	// METHOD SP request-target SP HTTP/1.x
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return req, errBadRequest
	}
	method, version := line[:sp1], line[sp2+1:]
	if len(version) != 8 || string(version[:7]) != "HTTP/1." || !isDigit(version[7]) {
		return req, errBadRequest
	}
	minor := version[7] - '0'
	req.head = string(method) == "HEAD"
	req.close = minor == 0
	for len(head) > 0 {
		eol := bytes.IndexByte(head, '\n')
		if eol < 0 {
			return req, errBadRequest
		}
		line := bytes.TrimSuffix(head[:eol], []byte("\r"))
		head = head[eol+1:]
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return req, errBadRequest
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || (req.length > 0 && req.length != n) {
				return req, errBadRequest
			}
			req.length = n
		case asciiEqualFold(name, "transfer-encoding"):
			// A request body's only framing coding is chunked, last.
			if !asciiEqualFold(value, "chunked") {
				return req, errBadRequest
			}
			req.chunked = true
		case asciiEqualFold(name, "connection"):
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case asciiEqualFold(tok, "close"):
					req.close = true
				case asciiEqualFold(tok, "keep-alive") && minor == 0:
					req.close = false
				}
			}
		}
	}
	if req.chunked && req.length > 0 {
		return req, errBadRequest // request smuggling shape: refuse (RFC 9112 6.3)
	}
	return req, nil
}

// bodyReader skips a request body, framed by Content-Length or chunked,
// reusing the response parser's body states.
type bodyReader struct{ p responseParser }

func (b *bodyReader) reset(chunked bool, length int64) {
	b.p.reset(false)
	b.p.chunked = chunked
	if chunked {
		b.p.state = stChunkSize
	} else {
		b.p.state = stBody
		b.p.remaining = length
	}
}

func (b *bodyReader) feed(in []byte) (int, bool, error) { return b.p.feed(in) }
