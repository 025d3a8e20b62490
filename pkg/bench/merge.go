package bench

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// wireResult is a Result with its histograms, for moving a run's
// measurement between processes (bench --workers): the summaries alone
// cannot be merged, the histograms can, exactly.
type wireResult struct {
	*Result
	Hist            string `json:"hist"`                       // HdrHistogram V2 compressed, base64
	HistUncorrected string `json:"hist_uncorrected,omitempty"` // with -R
}

// MarshalWire encodes r with its histograms.
func (r *Result) MarshalWire() ([]byte, error) {
	w := wireResult{Result: r}
	var err error
	if w.Hist, err = encodeHist(r.hist); err != nil {
		return nil, err
	}
	if r.histUncorrected != nil {
		if w.HistUncorrected, err = encodeHist(r.histUncorrected); err != nil {
			return nil, err
		}
	}
	return json.Marshal(w)
}

// UnmarshalWire decodes what MarshalWire wrote.
func UnmarshalWire(b []byte) (*Result, error) {
	w := wireResult{Result: &Result{}}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	if w.Hist == "" {
		return nil, fmt.Errorf("result without a latency histogram")
	}
	var err error
	if w.Result.hist, err = decodeHist(w.Hist); err != nil {
		return nil, fmt.Errorf("latency histogram: %w", err)
	}
	if w.HistUncorrected != "" {
		if w.Result.histUncorrected, err = decodeHist(w.HistUncorrected); err != nil {
			return nil, fmt.Errorf("uncorrected latency histogram: %w", err)
		}
	}
	return w.Result, nil
}

func encodeHist(h *hdrhistogram.Histogram) (string, error) {
	if h == nil {
		h = newHistogram()
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func decodeHist(s string) (*hdrhistogram.Histogram, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return hdrhistogram.Decode(b)
}

// Merge adds up runs made at the same time against the same target (the
// workers of bench --workers) into one Result: histograms merged value by
// value, counters and status codes summed, per-second timelines summed.
// Requests/s is the total over the longest run's elapsed time. TLS is the
// first run's negotiation with handshakes summed; the connect latency is
// not carried between processes, so its summary is left empty (count 0).
// SLOs are not evaluated.
func Merge(parts []*Result) (*Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("nothing to merge")
	}
	first := parts[0]
	m := &Result{
		Engine: first.Engine, Mode: first.Mode, URL: first.URL,
		Targets: first.Targets, Settings: first.Settings,
		Status: map[string]uint64{}, hist: newHistogram(),
	}
	m.Settings.Connections, m.Settings.Loops, m.Settings.Rate = 0, 0, 0
	m.Settings.Stages = nil
	var clamped, clampedU uint64
	first2 := map[string]string{}
	for i, p := range parts {
		if p.hist == nil {
			return nil, fmt.Errorf("part %d has no latency histogram", i)
		}
		if p.Engine != m.Engine {
			m.Engine = "mixed"
		}
		m.Settings.Connections += p.Settings.Connections
		m.Settings.Loops += p.Settings.Loops
		m.Settings.Rate += p.Settings.Rate
		m.ElapsedSeconds = max(m.ElapsedSeconds, p.ElapsedSeconds)
		m.Connects += p.Connects
		m.Sent += p.Sent
		m.Requests += p.Requests
		m.BytesRead += p.BytesRead
		m.BytesWritten += p.BytesWritten
		if dropped := m.hist.Merge(p.hist); dropped != 0 {
			return nil, fmt.Errorf("part %d: %d latencies out of the histogram's range", i, dropped)
		}
		clamped += p.Latency.Clamped
		if p.histUncorrected != nil {
			if m.histUncorrected == nil {
				m.histUncorrected = newHistogram()
			}
			m.histUncorrected.Merge(p.histUncorrected)
			if p.LatencyUncorrected != nil {
				clampedU += p.LatencyUncorrected.Clamped
			}
		}
		for k, v := range p.Status {
			m.Status[k] += v
		}
		e := &m.Errors
		e.Connect += p.Errors.Connect
		e.Read += p.Errors.Read
		e.Write += p.Errors.Write
		e.Timeout += p.Errors.Timeout
		e.Parse += p.Errors.Parse
		e.Closed += p.Errors.Closed
		e.TLS += p.Errors.TLS
		e.Total += p.Errors.Total
		for k, v := range p.Errors.First {
			if _, ok := first2[k]; !ok {
				first2[k] = v
			}
		}
		m.Interrupted = m.Interrupted || p.Interrupted
		for j, pt := range p.Timeline {
			if j >= len(m.Timeline) {
				m.Timeline = append(m.Timeline, TimelinePoint{Second: pt.Second})
			}
			m.Timeline[j].TargetRPS += pt.TargetRPS
			m.Timeline[j].SentRPS += pt.SentRPS
			m.Timeline[j].AchievedRPS += pt.AchievedRPS
		}
		if p.TLS != nil {
			if m.TLS == nil {
				t := *p.TLS
				t.Connect = Latency{}
				m.TLS = &t
			} else {
				m.TLS.Handshakes += p.TLS.Handshakes
				m.TLS.Resumed += p.TLS.Resumed
			}
		}
	}
	if len(first2) > 0 {
		m.Errors.First = maps.Clone(first2)
	}
	if m.ElapsedSeconds > 0 {
		m.RequestsPerSec = float64(m.Requests) / m.ElapsedSeconds
		m.BytesPerSec = float64(m.BytesRead) / m.ElapsedSeconds
	}
	m.Latency = summarize(m.hist)
	m.Latency.Clamped = clamped
	if m.histUncorrected != nil {
		u := summarize(m.histUncorrected)
		u.Clamped = clampedU
		m.LatencyUncorrected = &u
	}
	if m.Settings.Rate > 0 {
		m.Rate = &Rate{Target: m.Settings.Rate, Achieved: m.RequestsPerSec, Ratio: m.RequestsPerSec / m.Settings.Rate}
	}
	return m, nil
}

// Part is one of the runs a merged Result was made of, as the HTML report
// lists it (bench --workers: one per worker).
type Part struct {
	Name           string // "worker 0 (task ... on node)"
	Connections    int
	Rate           float64
	Requests       uint64
	RequestsPerSec float64
	Latency        Latency
	Errors         int64
}

// SetParts records the runs r was merged from, for WriteReport.
func (r *Result) SetParts(p []Part) { r.parts = p }
