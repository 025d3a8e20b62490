package bench

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// SLO is one pass/fail limit on a run (--slo): a latency percentile, the
// mean or the maximum below a duration, errors or non-2xx responses below
// a share or a count, the request rate above a number.
type SLO struct {
	Expr   string  // as written, normalised: "p99 < 200ms"
	Metric string  // p50 p75 p90 p99 p99.9 max mean errors non2xx rps
	Op     string  // < <= > >=
	Value  float64 // µs for latencies, a percentage or a count, requests/s
	// Percent: Value is a share of the requests (errors, non2xx), not a count.
	Percent bool
}

// sloQuantiles are the percentile metrics and their quantile.
var sloQuantiles = map[string]float64{"p50": 50, "p75": 75, "p90": 90, "p99": 99, "p99.9": 99.9}

// ParseSLO parses "METRIC OP VALUE": `p99 < 200ms`, `max<=1s`,
// `mean < 5ms`, `errors < 1%`, `errors < 10`, `non2xx < 0.5%`,
// `rps > 1000`.
func ParseSLO(s string) (SLO, error) {
	in := strings.TrimSpace(s)
	i := strings.IndexAny(in, "<>")
	if i <= 0 {
		return SLO{}, fmt.Errorf("limit %q: want METRIC < VALUE or METRIC > VALUE, e.g. 'p99 < 200ms', 'errors < 1%%', 'rps > 1000'", s)
	}
	metric := strings.ToLower(strings.TrimSpace(in[:i]))
	op := in[i : i+1]
	rest := in[i+1:]
	if strings.HasPrefix(rest, "=") {
		op += "="
		rest = rest[1:]
	}
	val := strings.TrimSpace(rest)
	if val == "" {
		return SLO{}, fmt.Errorf("limit %q: no value after %s", s, op)
	}
	slo := SLO{Metric: metric, Op: op}
	_, isQ := sloQuantiles[metric]
	switch {
	case isQ || metric == "max" || metric == "mean":
		if op[0] != '<' {
			return SLO{}, fmt.Errorf("limit %q: a latency limit is an upper bound (%s < DURATION)", s, metric)
		}
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return SLO{}, fmt.Errorf("limit %q: %q is not a positive duration (e.g. 200ms)", s, val)
		}
		slo.Value = float64(d.Microseconds())
		if slo.Value < 1 {
			slo.Value = 1
		}
	case metric == "errors" || metric == "non2xx":
		if op[0] != '<' {
			return SLO{}, fmt.Errorf("limit %q: %s is an upper bound (%s < N%% or %s < COUNT)", s, metric, metric, metric)
		}
		num := val
		if strings.HasSuffix(val, "%") {
			slo.Percent = true
			num = strings.TrimSpace(strings.TrimSuffix(val, "%"))
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || slo.Percent && f > 100 ||
			!slo.Percent && f != math.Trunc(f) {
			return SLO{}, fmt.Errorf("limit %q: %q is not a percentage (0-100%%) or a whole count", s, val)
		}
		slo.Value = f
	case metric == "rps":
		if op[0] != '>' {
			return SLO{}, fmt.Errorf("limit %q: rps is a lower bound (rps > N)", s)
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return SLO{}, fmt.Errorf("limit %q: %q is not a number of requests/s", s, val)
		}
		slo.Value = f
	default:
		return SLO{}, fmt.Errorf("limit %q: unknown metric %q (want p50, p75, p90, p99, p99.9, max, mean, errors, non2xx or rps)", s, metric)
	}
	slo.Expr = metric + " " + op + " " + val
	return slo, nil
}

// SLOResult is one limit's verdict. Its JSON form is an element of
// `slo` in `microctl bench -o json`.
type SLOResult struct {
	Limit    string  `json:"limit"`    // as given, normalised: "p99 < 200ms"
	Metric   string  `json:"metric"`   // p99, errors, rps...
	Unit     string  `json:"unit"`     // us, percent, count, rps
	Expected float64 `json:"expected"` // the limit's value, in Unit
	Measured float64 `json:"measured"` // the run's value, in Unit
	Pass     bool    `json:"pass"`
}

// unit is what Value and the measured figure are counted in.
func (s SLO) unit() string {
	switch {
	case s.Metric == "rps":
		return "rps"
	case s.Metric == "errors" || s.Metric == "non2xx":
		if s.Percent {
			return "percent"
		}
		return "count"
	}
	return "us"
}

// measure reads the limit's metric from a finished result. Latencies are
// the corrected ones (with -R, from when each request was due). errors
// counts failures against attempts (responses + failures); non2xx counts
// responses whose status is not 2xx against responses.
func (s SLO) measure(res *Result) float64 {
	if q, ok := sloQuantiles[s.Metric]; ok {
		if res.hist == nil || res.hist.TotalCount() == 0 {
			return math.Inf(1) // nothing answered: no latency can pass
		}
		return float64(res.hist.ValueAtQuantile(q))
	}
	switch s.Metric {
	case "max":
		if res.Latency.Count == 0 {
			return math.Inf(1)
		}
		return res.Latency.MaxUS
	case "mean":
		if res.Latency.Count == 0 {
			return math.Inf(1)
		}
		return res.Latency.MeanUS
	case "rps":
		return res.RequestsPerSec
	case "errors":
		n := float64(res.Errors.Total)
		if !s.Percent {
			return n
		}
		return percent(n, float64(res.Requests)+n)
	case "non2xx":
		var bad uint64
		for code, n := range res.Status {
			if len(code) != 3 || code[0] != '2' {
				bad += n
			}
		}
		if !s.Percent {
			return float64(bad)
		}
		return percent(float64(bad), float64(res.Requests))
	}
	return math.NaN()
}

// percent is 100*n/of; with nothing to count against, 100 (a run with no
// attempt cannot pass an error budget).
func percent(n, of float64) float64 {
	if of == 0 {
		return 100
	}
	return math.Round(1e6*n/of) / 1e4
}

func (s SLO) holds(v float64) bool {
	switch s.Op {
	case "<":
		return v < s.Value
	case "<=":
		return v <= s.Value
	case ">":
		return v > s.Value
	case ">=":
		return v >= s.Value
	}
	return false
}

// Evaluate gives the limit's verdict on a finished run.
func (s SLO) Evaluate(res *Result) SLOResult {
	v := s.measure(res)
	r := SLOResult{Limit: s.Expr, Metric: s.Metric, Unit: s.unit(), Expected: s.Value, Measured: v, Pass: s.holds(v)}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		r.Measured = -1 // JSON has no infinity: -1 means "nothing was measured"
		r.Pass = false
	}
	return r
}

// SLOsPassed says whether every limit held.
func (r *Result) SLOsPassed() bool {
	for _, s := range r.SLO {
		if !s.Pass {
			return false
		}
	}
	return r.SLOAbort == ""
}

// liveSLO tracks, while the run goes, what --slo-abort needs to know that
// a limit can no longer be met. One per loop; written by that loop only,
// read by the watcher.
type liveSLO struct {
	above  []int64 // thresholds (µs) of the latency limits, one per counter
	over   []atomic.Uint64
	maxUS  atomic.Int64
	non2xx atomic.Uint64
}

func newLiveSLO(thresholds []int64) *liveSLO {
	return &liveSLO{above: thresholds, over: make([]atomic.Uint64, len(thresholds))}
}

func (l *liveSLO) observe(status int, us int64) {
	if us > l.maxUS.Load() {
		l.maxUS.Store(us)
	}
	if status < 200 || status > 299 {
		l.non2xx.Add(1)
	}
	for i, t := range l.above {
		if !(us < t) {
			l.over[i].Add(1)
		}
	}
}

// sloWatch decides, from live counts, that a limit can no longer be met:
// its value is already past the limit and no further request can bring
// it back. planned is how many requests the run will attempt in all
// (-n, or the rate schedule's total with -R and -d), 0 when unknown:
// shares and percentiles are then decided only at the end.
type sloWatch struct {
	slos       []SLO
	thresholds []int64 // per SLO: index into liveSLO.above, or -1
	planned    float64
}

func newSLOWatch(slos []SLO, planned float64) (*sloWatch, []int64) {
	w := &sloWatch{slos: slos, planned: planned}
	var above []int64
	for _, s := range slos {
		idx := -1
		if _, ok := sloQuantiles[s.Metric]; ok {
			idx = len(above)
			t := int64(s.Value)
			if s.Op == "<=" {
				t++ // a latency equal to the limit passes
			}
			above = append(above, t)
		}
		w.thresholds = append(w.thresholds, int64(idx))
	}
	return w, above
}

type liveCounts struct {
	responses, errors, non2xx uint64
	maxUS                     int64
	over                      []uint64
}

// broken returns the first limit that can no longer be met, with why.
func (w *sloWatch) broken(c liveCounts) (SLO, string, bool) {
	for i, s := range w.slos {
		switch {
		case s.Metric == "max":
			if !s.holds(float64(c.maxUS)) && c.responses > 0 {
				return s, fmt.Sprintf("a response took %s", FormatUS(float64(c.maxUS))), true
			}
		case (s.Metric == "errors" || s.Metric == "non2xx"):
			n := c.errors
			if s.Metric == "non2xx" {
				n = c.non2xx
			}
			if !s.Percent {
				if !s.holds(float64(n)) {
					return s, fmt.Sprintf("%d %s so far", n, s.Metric), true
				}
			} else if w.planned > 0 && !s.holds(100*float64(n)/w.planned) {
				return s, fmt.Sprintf("%d %s so far, %.4g%% of the %d planned requests", n, s.Metric, 100*float64(n)/w.planned, int64(w.planned)), true
			}
		case w.thresholds[i] >= 0 && w.planned > 0:
			q := sloQuantiles[s.Metric]
			over := float64(c.over[w.thresholds[i]])
			// More than (100-q)% of all the planned requests are already
			// at or above the limit: the percentile cannot fall below it.
			if over > (100-q)/100*w.planned {
				return s, fmt.Sprintf("%d responses at or above %s, more than %.4g%% of the %d planned", int64(over), FormatUS(s.Value), 100-q, int64(w.planned)), true
			}
		}
	}
	return SLO{}, "", false
}
