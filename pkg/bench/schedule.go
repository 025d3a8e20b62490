package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Stage is one piece of a rate schedule: the rate goes linearly from From
// to To requests/s over Duration (From == To: a constant rate).
type Stage struct {
	From     float64       `json:"from_rps"`
	To       float64       `json:"to_rps"`
	Duration time.Duration `json:"-"`
	// DurationSeconds is Duration, for the JSON form.
	DurationSeconds float64 `json:"duration_s"`
}

// schedule is a sequence of stages starting at time 0. The k-th request
// of a run is due when the schedule's integral (requests due so far)
// reaches k; latency is measured from that time, so coordinated omission
// is corrected against the changing rate as against a constant one.
type schedule struct {
	stages []Stage
	cum    []float64 // requests due before each stage starts
	start  []float64 // each stage's start, in seconds
	total  float64   // requests due over the whole schedule
	length float64   // seconds
}

func newSchedule(stages []Stage) *schedule {
	s := &schedule{stages: stages}
	var n, t float64
	for _, st := range stages {
		s.cum = append(s.cum, n)
		s.start = append(s.start, t)
		d := st.Duration.Seconds()
		n += (st.From + st.To) / 2 * d
		t += d
	}
	s.total, s.length = n, t
	return s
}

// count is the number of requests due by t seconds: the integral of the
// rate from 0 to t.
func (s *schedule) count(t float64) float64 {
	for i, st := range s.stages {
		d := st.Duration.Seconds()
		if t < s.start[i]+d {
			tau := max(t-s.start[i], 0)
			a := (st.To - st.From) / d
			return s.cum[i] + st.From*tau + a*tau*tau/2
		}
	}
	return s.total
}

// timeOf is when the integral reaches n (seconds), from stage i on (the
// caller keeps i, since n only grows); ok is false when the schedule ends
// first.
func (s *schedule) timeOf(n float64, i *int) (float64, bool) {
	for ; *i < len(s.stages); *i++ {
		st := s.stages[*i]
		d := st.Duration.Seconds()
		end := s.cum[*i] + (st.From+st.To)/2*d
		if n > end || end == s.cum[*i] {
			continue
		}
		rem := n - s.cum[*i]
		if rem <= 0 {
			return s.start[*i], true
		}
		// Solve From*tau + a*tau^2/2 = rem, in the form that stays exact
		// when a or From is zero.
		a := (st.To - st.From) / d
		tau := 2 * rem / (st.From + math.Sqrt(st.From*st.From+2*a*rem))
		return s.start[*i] + min(tau, d), true
	}
	return 0, false
}

// ParseRate parses -R: "N" (a constant rate) or "START:END" (a ramp).
func ParseRate(s string) (from, to float64, ramp bool, err error) {
	a, b, ramp := strings.Cut(s, ":")
	if from, err = parseRPS(a); err != nil {
		return 0, 0, false, fmt.Errorf("rate %q: %w", s, err)
	}
	if !ramp {
		return from, from, false, nil
	}
	if to, err = parseRPS(b); err != nil {
		return 0, 0, false, fmt.Errorf("rate %q: %w", s, err)
	}
	return from, to, true, nil
}

func parseRPS(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number of requests/s", s)
	}
	return f, nil
}

// ParseStages reads a --stages file: one stage a line, `RATE DURATION`
// (a constant rate) or `START:END DURATION` (a linear ramp), e.g.
//
//	# warm up, then step up
//	0:1000 30s
//	1000 1m
//	2000 1m
//
// Blank lines and lines starting with # are skipped.
func ParseStages(r io.Reader) ([]Stage, error) {
	var stages []Stage
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: %q: want RATE DURATION or START:END DURATION (e.g. 1000 30s)", line, text)
		}
		from, to, _, err := ParseRate(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		d, err := time.ParseDuration(f[1])
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("line %d: %q is not a positive duration", line, f[1])
		}
		stages = append(stages, Stage{From: from, To: to, Duration: d, DurationSeconds: d.Seconds()})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no stage: want lines of RATE DURATION")
	}
	return stages, nil
}

// RampStages is -R FROM:TO --ramp RAMP -d TOTAL: a linear ramp, then the
// end rate held to the end.
func RampStages(from, to float64, ramp, total time.Duration) []Stage {
	st := []Stage{{From: from, To: to, Duration: ramp, DurationSeconds: ramp.Seconds()}}
	if hold := total - ramp; hold > 0 {
		st = append(st, Stage{From: to, To: to, Duration: hold, DurationSeconds: hold.Seconds()})
	}
	return st
}

// TimelinePoint is one second of a paced run: what the schedule asked
// for, what was sent and what was answered. Its JSON form is an element
// of `timeline` in `microctl bench -o json` (with -R, a ramp or stages).
type TimelinePoint struct {
	Second      int     `json:"t_s"`          // the second's start, from the run's start
	TargetRPS   float64 `json:"target_rps"`   // requests due in that second by the schedule
	SentRPS     float64 `json:"sent_rps"`     // requests sent in it
	AchievedRPS float64 `json:"achieved_rps"` // responses received in it
}

// timeline counts, per second of the run, requests sent and answered.
// One per loop; only that loop writes it.
type timeline struct {
	start      int64
	sent, done []uint64
}

func bump(s []uint64, i, n int) []uint64 {
	i = max(i, 0)
	for len(s) <= i {
		s = append(s, 0)
	}
	s[i] += uint64(n)
	return s
}

func (t *timeline) onSent(now int64, n int) { t.sent = bump(t.sent, int((now-t.start)/1e9), n) }
func (t *timeline) onDone(now int64)        { t.done = bump(t.done, int((now-t.start)/1e9), 1) }
