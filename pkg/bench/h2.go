package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 on the event loop: framing and HPACK are golang.org/x/net/http2's
// (http2.Framer, hpack); the client drives them from the loop. Frames are
// written into a buffer and handed to the connection in one Write; what
// the loop reads is collected until whole frames (and whole header
// blocks) are there, then read by a Framer over that buffer, so the
// Framer never waits.

// h2conn is the HTTP/2 state of one connection.
type h2conn struct {
	w       bytes.Buffer // frames to send
	fw      *http2.Framer
	enc     *hpack.Encoder
	hb      bytes.Buffer // one header block
	in      []byte       // received, not yet parsed
	rd      h2reader
	fr      *http2.Framer
	next    uint32 // next stream ID
	maxConc int    // the server's SETTINGS_MAX_CONCURRENT_STREAMS (0: none)
	streams map[uint32]*h2stream
	goaway  bool
	ready   bool // the server's SETTINGS came: its stream limit is known
	// unacked is the data received on the connection since the last
	// connection WINDOW_UPDATE: it is given back in one frame once it
	// reaches half the window, not one frame per DATA frame (what h2load
	// does too; a frame per response cost a write per response).
	unacked uint32
	refill  uint32 // give the window back at this much (h2Window/2)
}

type h2stream struct {
	f      flight
	status int
	// unacked: as h2conn.unacked, for the stream's own window.
	unacked uint32
}

// h2reader serves the Framer the whole frames collected so far.
type h2reader struct{ b []byte }

func (r *h2reader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// h2Window is the receive window the client announces: big enough that
// flow control never holds a response back.
const h2Window = 1 << 30

func newH2Conn() *h2conn {
	h := &h2conn{next: 1, streams: map[uint32]*h2stream{}, refill: h2Window / 2}
	h.fw = http2.NewFramer(&h.w, nil)
	h.enc = hpack.NewEncoder(&h.hb)
	h.fr = http2.NewFramer(nil, &h.rd)
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = 1 << 20
	return h
}

// start writes the client preface, SETTINGS and a connection window update.
func (h *h2conn) start() {
	h.w.WriteString(http2.ClientPreface)
	h.fw.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2Window - 1},
		http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	h.fw.WriteWindowUpdate(0, h2Window-65535)
}

// send hands the frames written so far to c (which copies them).
func (h *h2conn) send(c interface{ Write([]byte) }) int {
	n := h.w.Len()
	if n > 0 {
		c.Write(h.w.Bytes())
		h.w.Reset()
	}
	return n
}

// room is how many more streams may be opened.
func (h *h2conn) room(streams int) int {
	if h.goaway || !h.ready {
		return 0
	}
	limit := streams
	if h.maxConc > 0 && h.maxConc < limit {
		limit = h.maxConc
	}
	return limit - len(h.streams)
}

// request encodes one request as a new stream.
func (h *h2conn) request(r *h2req, f flight) {
	id := h.next
	h.next += 2
	h.hb.Reset()
	for _, kv := range r.fields {
		h.enc.WriteField(kv)
	}
	h.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hb.Bytes(),
		EndStream: len(r.body) == 0, EndHeaders: true})
	if len(r.body) > 0 {
		h.fw.WriteData(id, true, r.body)
	}
	h.streams[id] = &h2stream{f: f}
}

// h2req is a request as HTTP/2 header fields and a body.
type h2req struct {
	fields []hpack.HeaderField
	body   []byte
}

func newH2Req(method, scheme, authority, path string, headers []Header, body []byte) *h2req {
	r := &h2req{body: body}
	r.fields = append(r.fields,
		hpack.HeaderField{Name: ":method", Value: method},
		hpack.HeaderField{Name: ":scheme", Value: scheme},
		hpack.HeaderField{Name: ":authority", Value: authority},
		hpack.HeaderField{Name: ":path", Value: path})
	ua := false
	for _, hd := range headers {
		name := strings.ToLower(hd.Name)
		switch name {
		case "host":
			r.fields[2].Value = hd.Value
			continue
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue // connection-specific: not allowed in HTTP/2
		case "user-agent":
			ua = true
		}
		r.fields = append(r.fields, hpack.HeaderField{Name: name, Value: hd.Value})
	}
	if !ua {
		r.fields = append(r.fields, hpack.HeaderField{Name: "user-agent", Value: "microctl-bench"})
	}
	if len(body) > 0 || methodHasBody(method) {
		r.fields = append(r.fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	}
	return r
}

// h2event is what reading frames produced for the client.
type h2event struct {
	done   bool // a response completed
	f      flight
	status int
	reset  bool // the stream was reset by the server
}

// errH2Refused: the server does not speak HTTP/2.
var errH2Refused = errors.New("the server does not speak HTTP/2")

// feed parses whole frames out of what was received and calls ev for each
// response that completed or stream that was reset; replies (SETTINGS
// and PING acks, window updates) go into the write buffer.
func (h *h2conn) feed(in []byte, ev func(h2event)) error {
	h.in = append(h.in, in...)
	end := h2Whole(h.in)
	if end == 0 {
		if len(h.in) >= 9 && bytes.HasPrefix(h.in, []byte("HTTP/1.")) {
			return fmt.Errorf("%w: it answered %q", errH2Refused, firstLine(h.in))
		}
		return nil
	}
	h.rd.b = h.in[:end]
	for len(h.rd.b) > 0 {
		f, err := h.fr.ReadFrame()
		if err != nil {
			if bytes.HasPrefix(h.in, []byte("HTTP/1.")) {
				return fmt.Errorf("%w: it answered %q", errH2Refused, firstLine(h.in))
			}
			return fmt.Errorf("http2: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if f.IsAck() {
				continue
			}
			if v, ok := f.Value(http2.SettingMaxConcurrentStreams); ok {
				h.maxConc = int(v)
			}
			h.ready = true
			h.fw.WriteSettingsAck()
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fw.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			st := h.streams[f.StreamID]
			if st == nil {
				continue
			}
			if s := f.PseudoValue("status"); s != "" {
				code, err := strconv.Atoi(s)
				if err != nil {
					return fmt.Errorf("http2: bad :status %q", s)
				}
				if code >= 200 || st.status == 0 {
					st.status = code
				}
			}
			if f.StreamEnded() {
				delete(h.streams, f.StreamID)
				ev(h2event{done: true, f: st.f, status: st.status})
			}
		case *http2.DataFrame:
			st := h.streams[f.StreamID]
			// Flow control counts the whole payload, padding included.
			if n := f.Length; n > 0 {
				h.unacked += n
				if h.unacked >= h.refill {
					h.fw.WriteWindowUpdate(0, h.unacked)
					h.unacked = 0
				}
				if st != nil && !f.StreamEnded() {
					st.unacked += n
					if st.unacked >= h.refill {
						h.fw.WriteWindowUpdate(f.StreamID, st.unacked)
						st.unacked = 0
					}
				}
			}
			if st != nil && f.StreamEnded() {
				delete(h.streams, f.StreamID)
				ev(h2event{done: true, f: st.f, status: st.status})
			}
		case *http2.RSTStreamFrame:
			if st := h.streams[f.StreamID]; st != nil {
				delete(h.streams, f.StreamID)
				ev(h2event{reset: true, f: st.f})
			}
		case *http2.GoAwayFrame:
			h.goaway = true
		}
	}
	h.in = append(h.in[:0], h.in[end:]...)
	return nil
}

// h2Whole is the length of the longest prefix of b made of whole frames
// that does not end inside a header block (HEADERS without END_HEADERS,
// waiting for its CONTINUATION frames).
func h2Whole(b []byte) int {
	end, off, inBlock := 0, 0, false
	for len(b)-off >= 9 {
		n := int(b[off])<<16 | int(b[off+1])<<8 | int(b[off+2])
		if len(b)-off < 9+n {
			break
		}
		typ, flags := http2.FrameType(b[off+3]), http2.Flags(b[off+4])
		switch typ {
		case http2.FrameHeaders, http2.FrameContinuation:
			inBlock = flags&http2.FlagHeadersEndHeaders == 0
		}
		off += 9 + n
		if !inBlock {
			end = off
		}
	}
	return end
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	if len(line) > 80 {
		line = line[:80]
	}
	return string(line)
}
