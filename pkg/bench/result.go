package bench

import (
	"crypto/tls"
	"math"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what a run measured. Its JSON form is `microctl bench -o json`;
// the field names are stable (docs/bench.md lists them).
type Result struct {
	Engine   string   `json:"engine"` // pkg/net engine: epoll, or go (the portable fallback)
	Mode     string   `json:"mode"`   // http or tcp
	URL      string   `json:"url,omitempty"`
	Targets  []string `json:"targets"`
	Settings Settings `json:"settings"`

	ElapsedSeconds float64 `json:"elapsed_s"`
	Connects       uint64  `json:"connects"` // connections established, reconnects included
	Sent           uint64  `json:"requests_sent"`
	Requests       uint64  `json:"requests"` // completed: a response (or, --tcp, a reply) was received
	RequestsPerSec float64 `json:"requests_per_sec"`
	BytesRead      uint64  `json:"bytes_read"`
	BytesWritten   uint64  `json:"bytes_written"`
	BytesPerSec    float64 `json:"bytes_read_per_sec"`

	// Latency is measured from when each request was due: with -R, the
	// coordinated-omission-corrected figure; without, from when it was sent.
	Latency Latency `json:"latency"`
	// LatencyUncorrected, with -R only: from when each request was sent.
	LatencyUncorrected *Latency `json:"latency_uncorrected,omitempty"`
	Rate               *Rate    `json:"rate,omitempty"`
	// Timeline, in rate mode (-R, a ramp, stages): per second, the rate
	// the schedule asked for, the rate sent and the rate answered.
	Timeline []TimelinePoint `json:"timeline,omitempty"`

	Status map[string]uint64 `json:"status"` // HTTP status code -> responses; empty in --tcp mode
	// ByTarget, with --targets: each target's requests, status codes and
	// latency, in the file's order.
	ByTarget []TargetResult `json:"by_target,omitempty"`
	Errors   Errors         `json:"errors"`

	Interrupted bool `json:"interrupted"` // stopped early by Ctrl-C

	// TLS, with https: the handshakes and what they negotiated.
	TLS *TLSInfo `json:"tls,omitempty"`

	// SLO holds the verdict of each --slo limit, in the order given.
	SLO []SLOResult `json:"slo,omitempty"`
	// SLOAbort, with --slo-abort, says which limit stopped the run early
	// and why; empty when the run went to its end.
	SLOAbort string `json:"slo_abort,omitempty"`

	hist, histUncorrected *hdrhistogram.Histogram
	parts                 []Part // merged runs (SetParts), for the report
}

// Settings are the inputs of the run, as used.
type Settings struct {
	Connections     int      `json:"connections"`
	Loops           int      `json:"loops"`
	DurationSeconds float64  `json:"duration_s,omitempty"`
	Requests        int64    `json:"requests,omitempty"`
	Rate            float64  `json:"rate,omitempty"`   // -R, or the schedule's mean rate
	Stages          []Stage  `json:"stages,omitempty"` // a ramp (-R A:B --ramp) or --stages
	Pipeline        int      `json:"pipeline"`
	TimeoutSeconds  float64  `json:"timeout_s"`
	Method          string   `json:"method,omitempty"`
	Protocol        string   `json:"protocol,omitempty"` // http/1.1, h2 (over TLS) or h2c (prior knowledge)
	Streams         int      `json:"streams,omitempty"`  // with HTTP/2: streams in flight per connection
	Headers         []string `json:"headers,omitempty"`  // credentials redacted
	BodyBytes       int      `json:"body_bytes"`
}

// Latency summarises a histogram, in microseconds.
type Latency struct {
	Count   int64   `json:"count"`
	MinUS   float64 `json:"min_us"`
	MeanUS  float64 `json:"mean_us"`
	StdevUS float64 `json:"stdev_us"`
	P50US   float64 `json:"p50_us"`
	P75US   float64 `json:"p75_us"`
	P90US   float64 `json:"p90_us"`
	P99US   float64 `json:"p99_us"`
	P999US  float64 `json:"p99_9_us"`
	MaxUS   float64 `json:"max_us"`
	// Clamped counts latencies above an hour, recorded as an hour.
	Clamped uint64 `json:"clamped,omitempty"`
}

// Rate compares the achieved request rate with the -R target.
type Rate struct {
	Target   float64 `json:"target"`
	Achieved float64 `json:"achieved"`
	// Ratio is Achieved/Target: 1.0 is exact.
	Ratio float64 `json:"ratio"`
}

// Errors counts failures by kind. A failure on a connection with several
// pipelined requests in flight counts once; the other requests are lost
// (requests_sent - requests - failures).
type Errors struct {
	Connect int64 `json:"connect"`
	Read    int64 `json:"read"`
	Write   int64 `json:"write"`
	Timeout int64 `json:"timeout"`
	Parse   int64 `json:"parse"`
	Closed  int64 `json:"closed"` // closed or reset by the peer with requests in flight
	TLS     int64 `json:"tls"`    // TLS handshakes that failed (the reason in first.tls)
	Total   int64 `json:"total"`
	// First is the first error of each kind seen, for diagnosis.
	First map[string]string `json:"first,omitempty"`
}

func (r *runner) result() *Result {
	o := &r.o
	res := &Result{
		Engine: r.eng.Name(),
		Mode:   "http",
		URL:    RedactURL(o.URL),
		Status: map[string]uint64{},
		Settings: Settings{
			Connections:     o.Connections,
			Loops:           len(r.loops),
			DurationSeconds: o.Duration.Seconds(),
			Requests:        o.Requests,
			Rate:            o.Rate,
			Stages:          o.Stages,
			Pipeline:        o.Pipeline,
			TimeoutSeconds:  o.Timeout.Seconds(),
			BodyBytes:       len(o.Body),
		},
		hist: newHistogram(),
	}
	if o.TCP {
		res.Mode = "tcp"
	} else {
		res.Settings.Method = o.Method
		res.Settings.Protocol = "http/1.1"
		if o.HTTP2 {
			res.Settings.Protocol, res.Settings.Streams = "h2c", o.Streams
			if r.tlsBase != nil {
				res.Settings.Protocol = "h2"
			}
		}
		for _, h := range o.Headers {
			res.Settings.Headers = append(res.Settings.Headers, h.Redacted())
		}
	}
	for _, ep := range r.eps {
		res.Targets = append(res.Targets, ep.name)
	}
	if o.Rate > 0 {
		res.histUncorrected = newHistogram()
	}
	var end int64
	var clamped uint64
	first := map[string]string{}
	for _, lr := range r.loops {
		st := lr.st
		end = max(end, lr.end)
		res.hist.Merge(st.latency)
		if st.uncorrected != nil {
			res.histUncorrected.Merge(st.uncorrected)
		}
		clamped += st.clamped
		res.Sent += st.sent
		res.Requests += st.responses.Load()
		res.BytesRead += st.bytesRead.Load()
		res.BytesWritten += st.bytesWritten
		if !o.TCP {
			for code, n := range st.status {
				if n > 0 {
					res.Status[strconv.Itoa(code)] += n
				}
			}
			for code, n := range st.statusOther {
				res.Status[strconv.Itoa(code)] += n
			}
		}
		for k, n := range st.errors {
			if n == 0 {
				continue
			}
			kind := ErrorKind(k)
			switch kind {
			case ErrConnect:
				res.Errors.Connect += int64(n)
			case ErrRead:
				res.Errors.Read += int64(n)
			case ErrWrite:
				res.Errors.Write += int64(n)
			case ErrTimeout:
				res.Errors.Timeout += int64(n)
			case ErrParse:
				res.Errors.Parse += int64(n)
			case ErrClosed:
				res.Errors.Closed += int64(n)
			case ErrTLS:
				res.Errors.TLS += int64(n)
			}
			res.Errors.Total += int64(n)
			if _, ok := first[kind.String()]; !ok && st.firstErr[k] != nil {
				first[kind.String()] = st.firstErr[k].Error()
			}
		}
	}
	if len(first) > 0 {
		res.Errors.First = first
	}
	if n := len(o.TargetRequests); n > 0 {
		res.ByTarget = make([]TargetResult, n)
		for i, tr := range o.TargetRequests {
			h := newHistogram()
			t := TargetResult{Method: tr.Method, URL: RedactURL(tr.URL), Status: map[string]uint64{}}
			var clamped uint64
			for _, lr := range r.loops {
				ts := &lr.st.byTarget[i]
				h.Merge(ts.latency)
				clamped += ts.clamped
				t.Sent += ts.sent
				t.Requests += ts.responses
				t.Errors += ts.errors
				for code, n := range ts.status {
					t.Status[strconv.Itoa(code)] += n
				}
			}
			t.Latency = summarize(h)
			t.Latency.Clamped = clamped
			res.ByTarget[i] = t
		}
	}
	res.TLS = r.tlsInfo()
	for _, ls := range r.eng.Stats() {
		res.Connects += ls.Dialed
	}
	elapsed := time.Duration(end - r.start)
	res.ElapsedSeconds = elapsed.Seconds()
	if s := elapsed.Seconds(); s > 0 {
		res.RequestsPerSec = float64(res.Requests) / s
		res.BytesPerSec = float64(res.BytesRead) / s
	}
	res.Latency = summarize(res.hist)
	if res.histUncorrected != nil {
		u := summarize(res.histUncorrected)
		res.LatencyUncorrected = &u
		// Each response is recorded once in each histogram.
		res.Latency.Clamped = clamped / 2
		res.Rate = &Rate{Target: o.Rate, Achieved: res.RequestsPerSec, Ratio: res.RequestsPerSec / o.Rate}
		res.Timeline = r.timeline(elapsed)
	} else {
		res.Latency.Clamped = clamped
	}
	return res
}

func summarize(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count:   h.TotalCount(),
		MinUS:   float64(h.Min()),
		MeanUS:  round2(h.Mean()),
		StdevUS: round2(h.StdDev()),
		P50US:   float64(h.ValueAtQuantile(50)),
		P75US:   float64(h.ValueAtQuantile(75)),
		P90US:   float64(h.ValueAtQuantile(90)),
		P99US:   float64(h.ValueAtQuantile(99)),
		P999US:  float64(h.ValueAtQuantile(99.9)),
		MaxUS:   float64(h.Max()),
	}
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// Histogram is the run's latency histogram (corrected, with -R).
func (r *Result) Histogram() *hdrhistogram.Histogram { return r.hist }

// HistogramUncorrected is the uncorrected histogram, nil without -R.
func (r *Result) HistogramUncorrected() *hdrhistogram.Histogram { return r.histUncorrected }

// timeline merges the loops' per-second counts with what the schedule
// asked for in each second of the run.
func (r *runner) timeline(elapsed time.Duration) []TimelinePoint {
	o := &r.o
	secs := int(math.Ceil(elapsed.Seconds()))
	var sc *schedule
	if o.Stages != nil {
		sc = newSchedule(o.Stages)
	}
	pts := make([]TimelinePoint, secs)
	for i := range pts {
		pts[i].Second = i
		lo, hi := float64(i), math.Min(float64(i+1), elapsed.Seconds())
		if sc != nil {
			pts[i].TargetRPS = round2((sc.count(hi) - sc.count(lo)) / (hi - lo))
		} else {
			pts[i].TargetRPS = o.Rate
		}
	}
	for _, lr := range r.loops {
		if lr.st.tl == nil {
			continue
		}
		for i, n := range lr.st.tl.sent {
			if i < secs {
				pts[i].SentRPS += float64(n)
			}
		}
		for i, n := range lr.st.tl.done {
			if i < secs {
				pts[i].AchievedRPS += float64(n)
			}
		}
	}
	// The last second may be partial: its counts per second of it, or,
	// under half a second (the stop a little after the deadline), left
	// out: a few requests over a few milliseconds are no rate.
	if frac := elapsed.Seconds() - float64(secs-1); secs > 0 && frac > 0 && frac < 1 {
		if frac < 0.5 && secs > 1 {
			return pts[:secs-1]
		}
		pts[secs-1].SentRPS = round2(pts[secs-1].SentRPS / frac)
		pts[secs-1].AchievedRPS = round2(pts[secs-1].AchievedRPS / frac)
	}
	return pts
}

// TLSInfo is the TLS side of an https run.
type TLSInfo struct {
	Version     string `json:"version"`      // of the first handshake: TLS 1.3, TLS 1.2
	CipherSuite string `json:"cipher_suite"` // of the first handshake
	ALPN        string `json:"alpn"`         // the protocol the server chose, "" if none
	Handshakes  uint64 `json:"handshakes"`   // completed
	Resumed     uint64 `json:"resumed"`      // of which resumed a session (no certificate exchange)
	// Connect is the time from starting the TCP connect to the end of the
	// handshake, in µs: handshakes count here, not in the request latency.
	Connect Latency `json:"connect"`
}

func (r *runner) tlsInfo() *TLSInfo {
	var info *TLSInfo
	h := newHistogram()
	var clamped uint64
	for _, lr := range r.loops {
		t := lr.st.tls
		if t == nil {
			continue
		}
		if info == nil {
			info = &TLSInfo{
				Version:     tls.VersionName(t.first.Version),
				CipherSuite: tls.CipherSuiteName(t.first.CipherSuite),
				ALPN:        t.first.NegotiatedProtocol,
			}
		}
		info.Handshakes += t.handshakes
		info.Resumed += t.resumed
		h.Merge(t.connect)
		clamped += t.clamped
	}
	if info != nil {
		info.Connect = summarize(h)
		info.Connect.Clamped = clamped
	}
	return info
}
