package bench

import (
	"strings"
	"testing"
)

func TestParseSLO(t *testing.T) {
	tests := []struct {
		in      string
		want    SLO
		wantErr string
	}{
		{in: "p99 < 200ms", want: SLO{Expr: "p99 < 200ms", Metric: "p99", Op: "<", Value: 200000}},
		{in: "P99.9<=1s", want: SLO{Expr: "p99.9 <= 1s", Metric: "p99.9", Op: "<=", Value: 1e6}},
		{in: "max < 1.5ms", want: SLO{Expr: "max < 1.5ms", Metric: "max", Op: "<", Value: 1500}},
		{in: "mean<5ms", want: SLO{Expr: "mean < 5ms", Metric: "mean", Op: "<", Value: 5000}},
		{in: "errors < 1%", want: SLO{Expr: "errors < 1%", Metric: "errors", Op: "<", Value: 1, Percent: true}},
		{in: "errors < 10", want: SLO{Expr: "errors < 10", Metric: "errors", Op: "<", Value: 10}},
		{in: "non2xx <= 0.5 %", want: SLO{Expr: "non2xx <= 0.5 %", Metric: "non2xx", Op: "<=", Value: 0.5, Percent: true}},
		{in: "rps > 1000", want: SLO{Expr: "rps > 1000", Metric: "rps", Op: ">", Value: 1000}},
		{in: "p99 > 1ms", wantErr: "upper bound"},
		{in: "rps < 5", wantErr: "lower bound"},
		{in: "p98 < 1ms", wantErr: "unknown metric"},
		{in: "p99 < 200", wantErr: "not a positive duration"},
		{in: "errors < 101%", wantErr: "not a percentage"},
		{in: "errors < 1.5", wantErr: "whole count"},
		{in: "p99", wantErr: "want METRIC"},
		{in: "p99 <", wantErr: "no value"},
		{in: "rps > -1", wantErr: "not a number"},
	}
	for _, tc := range tests {
		got, err := ParseSLO(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseSLO(%q) error %v, want one containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSLO(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestSLOEvaluate(t *testing.T) {
	res := &Result{hist: newHistogram(), Requests: 1000, RequestsPerSec: 500,
		Status: map[string]uint64{"200": 990, "503": 10}, Errors: Errors{Total: 10}}
	for i := 1; i <= 1000; i++ {
		res.hist.RecordValue(int64(i)) // 1..1000 µs
	}
	res.Latency = summarize(res.hist)
	tests := []struct {
		expr     string
		measured float64
		pass     bool
	}{
		{"p50 < 1ms", 500, true},
		{"p99 < 900us", 990, false},
		{"max <= 1ms", 1000, true},
		{"max < 1ms", 1000, false},
		{"errors < 1%", 0.9901, true}, // 10 of 1010 attempts
		{"errors < 10", 10, false},
		{"non2xx < 1%", 1, false},
		{"non2xx <= 1%", 1, true},
		{"rps > 400", 500, true},
		{"rps > 500", 500, false},
	}
	for _, tc := range tests {
		s, err := ParseSLO(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		got := s.Evaluate(res)
		if got.Measured != tc.measured || got.Pass != tc.pass {
			t.Errorf("%s: measured %v pass %v, want %v %v", tc.expr, got.Measured, got.Pass, tc.measured, tc.pass)
		}
	}
	// A run that answered nothing passes no latency limit.
	empty := &Result{hist: newHistogram()}
	s, _ := ParseSLO("p99 < 1s")
	if got := s.Evaluate(empty); got.Pass || got.Measured != -1 {
		t.Errorf("empty run: %+v", got)
	}
}

func TestSLOWatchBroken(t *testing.T) {
	parse := func(exprs ...string) []SLO {
		var out []SLO
		for _, e := range exprs {
			s, err := ParseSLO(e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return out
	}
	tests := []struct {
		name    string
		slos    []SLO
		planned float64
		c       liveCounts
		broken  bool
	}{
		{"max under", parse("max < 10ms"), 0, liveCounts{responses: 5, maxUS: 9999}, false},
		{"max over", parse("max < 10ms"), 0, liveCounts{responses: 5, maxUS: 10000}, true},
		{"error count reached", parse("errors < 3"), 0, liveCounts{errors: 3}, true},
		{"error count not yet", parse("errors < 3"), 0, liveCounts{errors: 2}, false},
		{"error share, total unknown", parse("errors < 1%"), 0, liveCounts{errors: 500, responses: 1}, false},
		{"error share of planned", parse("errors < 1%"), 1000, liveCounts{errors: 10}, true},
		{"error share of planned, not yet", parse("errors < 1%"), 1000, liveCounts{errors: 9}, false},
		{"non2xx count", parse("non2xx < 1"), 0, liveCounts{non2xx: 1}, true},
		{"p99 of planned", parse("p99 < 1ms"), 1000, liveCounts{over: []uint64{11}}, true},
		{"p99 of planned, not yet", parse("p99 < 1ms"), 1000, liveCounts{over: []uint64{10}}, false},
		{"p99, total unknown", parse("p99 < 1ms"), 0, liveCounts{over: []uint64{900}}, false},
		{"rps never early", parse("rps > 1e9"), 1000, liveCounts{responses: 1}, false},
	}
	for _, tc := range tests {
		w, _ := newSLOWatch(tc.slos, tc.planned)
		if _, _, got := w.broken(tc.c); got != tc.broken {
			t.Errorf("%s: broken %v, want %v", tc.name, got, tc.broken)
		}
	}
}
