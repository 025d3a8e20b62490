package bench

import (
	"errors"
	"strings"
	"testing"
)

// The targets file, the stages file and --slo come from outside: none of
// them may panic, and what they accept must be usable.

func FuzzParseTargets(f *testing.F) {
	f.Add("GET http://h:1/a\nX-A: 1\n\nPOST http://h:1/b\n@b\n")
	f.Add("# c\nHEAD /p\n")
	f.Add("GET http://h/\nnocolon\n")
	f.Fuzz(func(t *testing.T, in string) {
		reqs, err := ParseTargets(strings.NewReader(in), func(string) ([]byte, error) { return nil, errors.New("no files") })
		if err != nil {
			return
		}
		for _, r := range reqs {
			if !validMethod(r.Method) || r.URL == "" {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}

func FuzzParseStages(f *testing.F) {
	f.Add("0:1000 30s\n1000 1m\n")
	f.Add("5 1ns\n")
	f.Fuzz(func(t *testing.T, in string) {
		st, err := ParseStages(strings.NewReader(in))
		if err != nil {
			return
		}
		sc := newSchedule(st)
		i := 0
		if sc.total > 0 {
			if _, ok := sc.timeOf(sc.total/2, &i); !ok {
				t.Fatalf("no time for half of %v", sc.total)
			}
		}
	})
}

func FuzzParseSLO(f *testing.F) {
	for _, s := range []string{"p99 < 200ms", "errors < 1%", "rps > 10", "max<=1s", "non2xx < 3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSLO(in)
		if err != nil {
			return
		}
		again, err := ParseSLO(s.Expr)
		if err != nil || again.Metric != s.Metric || again.Op != s.Op {
			t.Fatalf("%q normalised to %q, which parses as %+v, %v", in, s.Expr, again, err)
		}
	})
}
