package bench

import (
	"bytes"
	"fmt"
)

// maxLine bounds a status, header, chunk-size or trailer line, and
// maxHeader the whole header section: a peer that never ends its headers
// is a parse error, not unbounded memory.
const (
	maxLine   = 64 << 10
	maxHeader = 1 << 20
)

// ParseError is a response that is not HTTP/1.1 as RFC 9112 frames it.
type ParseError struct{ Msg string }

func (e *ParseError) Error() string { return "malformed response: " + e.Msg }

func parseErr(format string, a ...any) error { return &ParseError{Msg: fmt.Sprintf(format, a...)} }

// Parser states.
const (
	stStatus = iota
	stHeader
	stBody // Content-Length or chunk data; remaining counts down
	stBodyEOF
	stChunkSize
	stChunkEnd // the CRLF after a chunk's data
	stTrailer
)

// responseParser reads HTTP/1.1 responses incrementally, from reads of any
// size and split anywhere: it copies nothing but a line that straddles two
// reads. One parser per connection, reused for every response.
type responseParser struct {
	state     int
	line      []byte // a line begun in an earlier read
	headBytes int    // size of the header section so far

	// The request the next response answers.
	head bool // HEAD: no body, whatever the headers say

	// The response being parsed.
	Status    int
	close     bool  // the connection ends after this response
	length    int64 // Content-Length, -1 if absent
	chunked   bool
	te        bool // a Transfer-Encoding field was present
	remaining int64
	minor     int // HTTP/1.minor
}

// reset prepares for the response to the next request; head says whether
// that request was HEAD.
func (p *responseParser) reset(head bool) {
	p.head = head
	p.state = stStatus
	p.line = p.line[:0]
	p.headBytes = 0
	p.Status = 0
	p.close = false
	p.length = -1
	p.chunked = false
	p.te = false
	p.remaining = 0
}

// Close reports whether the connection must close after the response
// just completed (Connection: close, HTTP/1.0, or a body delimited by EOF).
func (p *responseParser) Close() bool { return p.close }

// feed parses b, the next bytes of the connection, up to the end of one
// final response. It returns how many bytes it used and whether the
// response is complete; the rest of b belongs to the next response.
// Interim 1xx responses are skipped (their status is not reported).
func (p *responseParser) feed(b []byte) (n int, done bool, err error) {
	for n < len(b) {
		switch p.state {
		case stBody:
			k := int64(len(b) - n)
			if k > p.remaining {
				k = p.remaining
			}
			n += int(k)
			p.remaining -= k
			if p.remaining > 0 {
				return n, false, nil
			}
			if !p.chunked {
				return n, true, nil
			}
			p.state = stChunkEnd
		case stBodyEOF:
			return len(b), false, nil
		default:
			line, used, ok, err := p.nextLine(b[n:])
			n += used
			if err != nil {
				return n, false, err
			}
			if !ok {
				return n, false, nil
			}
			done, err := p.onLine(line)
			if err != nil || done {
				return n, done, err
			}
		}
	}
	return n, false, nil
}

// eof tells the parser the connection closed. It reports whether that
// completes a response whose body runs to the end of the connection; a
// response cut short is an error.
func (p *responseParser) eof() (done bool, err error) {
	switch {
	case p.state == stBodyEOF:
		return true, nil
	case p.state == stStatus && len(p.line) == 0:
		return false, nil // between responses: a clean close
	}
	return false, parseErr("connection closed in the middle of a response")
}

// nextLine returns the next line of b without its CRLF (or bare LF), how
// many bytes of b it used, and ok=false when b ends before the line does.
func (p *responseParser) nextLine(b []byte) (line []byte, used int, ok bool, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(p.line)+len(b) > maxLine {
			return nil, len(b), false, parseErr("line longer than %d bytes", maxLine)
		}
		p.line = append(p.line, b...)
		return nil, len(b), false, nil
	}
	used = i + 1
	if len(p.line) > 0 {
		if len(p.line)+i > maxLine {
			return nil, used, false, parseErr("line longer than %d bytes", maxLine)
		}
		p.line = append(p.line, b[:i]...)
		line = p.line
		p.line = p.line[:0] // line still points at the bytes; they are used before the next append
	} else {
		line = b[:i]
	}
	if len(line) > maxLine {
		return nil, used, false, parseErr("line longer than %d bytes", maxLine)
	}
	if k := len(line); k > 0 && line[k-1] == '\r' {
		line = line[:k-1]
	}
	return line, used, true, nil
}

// onLine handles one complete line in the current state.
func (p *responseParser) onLine(line []byte) (done bool, err error) {
	switch p.state {
	case stStatus:
		if len(line) == 0 && p.headBytes == 0 {
			// RFC 9112 2.2: a recipient may ignore empty lines before the status line.
			return false, nil
		}
		p.headBytes = len(line)
		return false, p.statusLine(line)
	case stHeader:
		p.headBytes += len(line) + 2
		if p.headBytes > maxHeader {
			return false, parseErr("header section longer than %d bytes", maxHeader)
		}
		if len(line) == 0 {
			return p.endOfHeaders()
		}
		return false, p.headerLine(line)
	case stChunkSize:
		size, err := parseChunkSize(line)
		if err != nil {
			return false, err
		}
		if size == 0 {
			p.state = stTrailer
			return false, nil
		}
		p.remaining = size
		p.state = stBody
		return false, nil
	case stChunkEnd:
		if len(line) != 0 {
			return false, parseErr("chunk data longer than its size")
		}
		p.state = stChunkSize
		return false, nil
	case stTrailer:
		if len(line) == 0 {
			return true, nil
		}
		return false, nil // trailer fields are read and ignored
	}
	return false, parseErr("internal: line in state %d", p.state)
}

// statusLine parses "HTTP/1.1 200 OK".
func (p *responseParser) statusLine(line []byte) error {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || (len(line) > 12 && line[12] != ' ') {
		return parseErr("bad status line %q", truncate(line))
	}
	p.minor = int(line[7] - '0')
	p.Status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if p.Status < 100 {
		return parseErr("bad status code %d", p.Status)
	}
	// HTTP/1.0 closes unless it says keep-alive.
	p.close = p.minor == 0
	p.length = -1
	p.chunked = false
	p.te = false
	p.state = stHeader
	return nil
}

// headerLine picks out the fields that frame the message.
func (p *responseParser) headerLine(line []byte) error {
	if line[0] == ' ' || line[0] == '\t' {
		return parseErr("obsolete line folding")
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return parseErr("header line without a name: %q", truncate(line))
	}
	name := line[:colon]
	if name[len(name)-1] == ' ' || name[len(name)-1] == '\t' {
		return parseErr("white space before the colon in %q", truncate(line))
	}
	value := bytes.Trim(line[colon+1:], " \t")
	switch len(name) {
	case len("content-length"):
		if asciiEqualFold(name, "content-length") {
			n, ok := parseDecimal(value)
			if !ok {
				return parseErr("bad Content-Length %q", truncate(value))
			}
			if p.length >= 0 && p.length != n {
				return parseErr("conflicting Content-Length values")
			}
			p.length = n
		}
	case len("transfer-encoding"):
		if asciiEqualFold(name, "transfer-encoding") {
			// Chunked must be the last coding; anything else on a
			// response means the body runs to the end of the connection.
			last := value
			if i := bytes.LastIndexByte(value, ','); i >= 0 {
				last = bytes.Trim(value[i+1:], " \t")
			}
			p.te = true
			p.chunked = asciiEqualFold(last, "chunked")
		}
	case len("connection"):
		if asciiEqualFold(name, "connection") {
			for _, tok := range bytes.Split(value, []byte(",")) {
				tok = bytes.Trim(tok, " \t")
				switch {
				case asciiEqualFold(tok, "close"):
					p.close = true
				case asciiEqualFold(tok, "keep-alive") && p.minor == 0:
					p.close = false
				}
			}
		}
	}
	return nil
}

// endOfHeaders decides how the body is framed (RFC 9112 6.3).
func (p *responseParser) endOfHeaders() (done bool, err error) {
	switch {
	case p.Status < 200 && p.Status != 101:
		// Interim response (100 Continue, 103 Early Hints): the final one follows.
		head := p.head
		p.reset(head)
		return false, nil
	case p.Status == 101:
		// Switching protocols: what follows is not HTTP.
		p.close = true
		return true, nil
	case p.head || p.Status == 204 || p.Status == 304:
		return true, nil
	case p.chunked:
		if p.length >= 0 {
			// Both framings: chunked wins (RFC 9112 6.3), and a
			// connection that carried such a message is not reused.
			p.close = true
		}
		p.state = stChunkSize
		return false, nil
	case p.te:
		// A coding other than chunked: the body ends with the connection.
		p.close = true
		p.state = stBodyEOF
		return false, nil
	case p.length >= 0:
		if p.length == 0 {
			return true, nil
		}
		p.remaining = p.length
		p.state = stBody
		return false, nil
	default:
		p.close = true
		p.state = stBodyEOF
		return false, nil
	}
}

func parseChunkSize(line []byte) (int64, error) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i] // chunk extensions are ignored
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 {
		return 0, parseErr("empty chunk size")
	}
	if len(line) > 15 {
		return 0, parseErr("chunk size %q too large", truncate(line))
	}
	var n int64
	for _, c := range line {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, parseErr("bad chunk size %q", truncate(line))
		}
		n = n<<4 | int64(d)
	}
	return n, nil
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// asciiEqualFold compares a header token with a lower-case name.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
