package bench

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds from 1 µs to one hour with three
// significant digits (0.1% resolution). A value above an hour is clamped
// to the top and counted in Clamped, never dropped.
const (
	histMin    = 1
	histMax    = 3_600_000_000
	histDigits = 3
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMin, histMax, histDigits)
}

// ErrorKind classifies a failed request or connection.
type ErrorKind int

const (
	ErrConnect ErrorKind = iota // the connection could not be made
	ErrRead                     // reading failed
	ErrWrite                    // writing failed
	ErrTimeout                  // no response within the timeout
	ErrParse                    // the response was not valid HTTP/1.1
	ErrClosed                   // the peer closed or reset the connection with requests in flight
	ErrTLS                      // the TLS handshake failed
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{"connect", "read", "write", "timeout", "parse", "closed", "tls"}

func (k ErrorKind) String() string { return errorKindNames[k] }

// loopStats is what one loop measured; only that loop writes it. The
// atomic counters are also read by the progress reporter.
type loopStats struct {
	latency     *hdrhistogram.Histogram // from when each request was due (= sent without -R)
	uncorrected *hdrhistogram.Histogram // from when it was sent; only with -R
	clamped     uint64

	status      [600]uint64
	statusOther map[int]uint64
	errors      [numErrorKinds]uint64
	firstErr    [numErrorKinds]error

	sent         uint64
	bytesWritten uint64

	live *liveSLO  // only with --slo-abort
	tl   *timeline // only in rate mode

	byTarget []targetStats // only with --targets

	tls *tlsStats // only with https

	// Read by the progress reporter while the loop runs.
	responses atomic.Uint64
	bytesRead atomic.Uint64
	errCount  atomic.Uint64
	_         [64]byte // keep loops' counters off each other's cache line
}

func newLoopStats(rate bool) *loopStats {
	s := &loopStats{latency: newHistogram()}
	if rate {
		s.uncorrected = newHistogram()
		s.tl = &timeline{}
	}
	return s
}

func record(h *hdrhistogram.Histogram, us int64, clamped *uint64) {
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
		*clamped++
	}
	h.RecordValue(us)
}

func (s *loopStats) response(status int, dueToNowUS, sentToNowUS, now int64) {
	record(s.latency, dueToNowUS, &s.clamped)
	if s.uncorrected != nil {
		record(s.uncorrected, sentToNowUS, &s.clamped)
	}
	if status >= 0 && status < len(s.status) {
		s.status[status]++
	} else {
		if s.statusOther == nil {
			s.statusOther = map[int]uint64{}
		}
		s.statusOther[status]++
	}
	s.responses.Add(1)
	if s.live != nil {
		s.live.observe(status, dueToNowUS)
	}
	if s.tl != nil {
		s.tl.onDone(now)
	}
}

func (s *loopStats) fail(kind ErrorKind, err error) {
	s.errors[kind]++
	if s.firstErr[kind] == nil {
		s.firstErr[kind] = err
	}
	s.errCount.Add(1)
}

// targetStats is one target's share of a loop's run (--targets).
type targetStats struct {
	latency                 *hdrhistogram.Histogram
	clamped                 uint64
	sent, responses, errors uint64
	status                  map[int]uint64
}

func (t *targetStats) response(status int, us int64) {
	record(t.latency, us, &t.clamped)
	t.responses++
	t.status[status]++
}

// tlsStats is what a loop saw of its TLS handshakes.
type tlsStats struct {
	connect    *hdrhistogram.Histogram // connect + handshake, µs
	clamped    uint64
	handshakes uint64
	resumed    uint64
	first      *tls.ConnectionState
}

func (s *loopStats) handshake(ns int64, st *tls.ConnectionState) {
	t := s.tls
	if t == nil {
		t = &tlsStats{connect: newHistogram()}
		s.tls = t
	}
	record(t.connect, ns/1e3, &t.clamped)
	t.handshakes++
	if st.DidResume {
		t.resumed++
	}
	if t.first == nil {
		t.first = st
	}
}
