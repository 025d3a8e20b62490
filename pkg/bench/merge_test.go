package bench

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// fakeRun is one worker's raw data: every latency it saw and every status.
type fakeRun struct {
	lat, latU []int64
	status    []int
	errs      [numErrorKinds]int64
}

// result builds the Result a run of those raw values gives, through the
// same recording path as a real run (record), then sends it through the
// wire encoding as a worker does.
func (f fakeRun) result(t *testing.T, rate bool) *Result {
	t.Helper()
	st := newLoopStats(rate)
	for i, us := range f.lat {
		record(st.latency, us, &st.clamped)
		if rate {
			record(st.uncorrected, f.latU[i], &st.clamped)
		}
	}
	r := &Result{Engine: "epoll", Mode: "http", Status: map[string]uint64{}, hist: st.latency, histUncorrected: st.uncorrected}
	r.Requests = uint64(len(f.lat))
	r.Sent = r.Requests + uint64(f.errs[ErrTimeout])
	for _, s := range f.status {
		r.Status[strconv.Itoa(s)]++
	}
	r.Errors.Timeout = f.errs[ErrTimeout]
	r.Errors.Total = f.errs[ErrTimeout]
	r.Settings.Connections = 7
	r.ElapsedSeconds = 2
	r.Latency = summarize(r.hist)
	r.Latency.Clamped = st.clamped
	if rate {
		u := summarize(r.histUncorrected)
		r.LatencyUncorrected = &u
		r.Settings.Rate = 100
	}
	b, err := r.MarshalWire()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalWire(b)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// TestMergeIsExact: the merged histogram equals the histogram of the union
// of every worker's raw latencies, value for value, and the counts are the
// sums of the raw data.
func TestMergeIsExact(t *testing.T) {
	for _, rate := range []bool{false, true} {
		t.Run("rate="+strconv.FormatBool(rate), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			union, unionU := newHistogram(), newHistogram()
			var parts []*Result
			var total, timeouts int64
			statuses := map[string]uint64{}
			for w := range 3 {
				var f fakeRun
				n := 1000 + 997*w // workers of different sizes
				for range n {
					// Lognormal-ish spread from µs to seconds, plus a few
					// values over the top (clamped) and under the bottom.
					us := int64(rng.ExpFloat64() * float64(int64(1)<<rng.IntN(20)))
					if rng.IntN(500) == 0 {
						us = histMax + 5
					}
					f.lat = append(f.lat, us)
					f.latU = append(f.latU, us/2)
					s := []int{200, 200, 200, 404, 503}[rng.IntN(5)]
					f.status = append(f.status, s)
					statuses[strconv.Itoa(s)]++
					var c uint64
					record(union, us, &c)
					record(unionU, us/2, &c)
				}
				f.errs[ErrTimeout] = int64(w)
				timeouts += int64(w)
				total += int64(n)
				parts = append(parts, f.result(t, rate))
			}
			m, err := Merge(parts)
			if err != nil {
				t.Fatal(err)
			}
			if !m.Histogram().Equals(union) {
				t.Errorf("merged histogram differs from the union's: %d vs %d values", m.Histogram().TotalCount(), union.TotalCount())
			}
			if m.Latency != summarizeClamped(union, m.Latency.Clamped) || m.Latency.Count != total {
				t.Errorf("latency %+v, union %+v", m.Latency, summarize(union))
			}
			var clamped uint64
			for _, p := range parts {
				clamped += p.Latency.Clamped
			}
			if m.Latency.Clamped != clamped {
				t.Errorf("clamped %d, sum %d", m.Latency.Clamped, clamped)
			}
			if rate {
				if m.HistogramUncorrected() == nil || !m.HistogramUncorrected().Equals(unionU) {
					t.Error("merged uncorrected histogram differs from the union's")
				}
				if m.Rate == nil || m.Rate.Target != 300 {
					t.Errorf("rate %+v, want target 300", m.Rate)
				}
			}
			if int64(m.Requests) != total || m.Errors.Timeout != timeouts || m.Errors.Total != timeouts || int64(m.Sent) != total+timeouts {
				t.Errorf("requests %d sent %d timeouts %d; want %d, %d, %d", m.Requests, m.Sent, m.Errors.Timeout, total, total+timeouts, timeouts)
			}
			for k, v := range statuses {
				if m.Status[k] != v {
					t.Errorf("status %s: %d, want %d", k, m.Status[k], v)
				}
			}
			if m.Settings.Connections != 21 || m.RequestsPerSec != float64(total)/2 {
				t.Errorf("connections %d rps %g", m.Settings.Connections, m.RequestsPerSec)
			}
		})
	}
}

func summarizeClamped(h *hdrhistogram.Histogram, c uint64) Latency {
	l := summarize(h)
	l.Clamped = c
	return l
}

// A merged result's report lists its parts (the workers), names escaped.
func TestReportListsParts(t *testing.T) {
	var parts []*Result
	for range 2 {
		parts = append(parts, fakeRun{lat: []int64{100, 200}, latU: []int64{100, 200}, status: []int{200, 200}}.result(t, false))
	}
	m, err := Merge(parts)
	if err != nil {
		t.Fatal(err)
	}
	m.SetParts([]Part{{Name: "worker 0 (task <x> on n1)", Connections: 7, Requests: 2}, {Name: "worker 1", Connections: 7, Requests: 2}})
	var page strings.Builder
	if err := WriteReport(&page, m, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<h2>Workers</h2>", "worker 0 (task &lt;x&gt; on n1)", "worker 1"} {
		if !strings.Contains(page.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
