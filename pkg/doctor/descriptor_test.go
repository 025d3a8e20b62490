package doctor

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

type hinted struct{ error }

func (hinted) Hint() string { return "do this" }

func TestLazy(t *testing.T) {
	checks := []string{"x.a", "x.b"}
	bad := hinted{errors.New("no such host")}
	okProbe := func(string) Probe {
		return func(context.Context) []Result {
			return []Result{{Check: "x.a", Status: OK}, {Check: "x.b", Status: OK}}
		}
	}
	tests := []struct {
		name    string
		client  func() (string, error)
		missing Missing
		want    []Result
	}{
		{"client built", func() (string, error) { return "c", nil }, FailFirst,
			[]Result{{Check: "x.a", Status: OK}, {Check: "x.b", Status: OK}}},
		{"fail first", func() (string, error) { return "", bad }, FailFirst,
			[]Result{{Check: "x.a", Status: Fail, Detail: "no such host", Hint: "do this"}, {Check: "x.b", Status: Skip, Detail: "no client"}}},
		{"skip all", func() (string, error) { return "", bad }, SkipAll("no Consul client"),
			[]Result{{Check: "x.a", Status: Skip, Detail: "no Consul client"}, {Check: "x.b", Status: Skip, Detail: "no Consul client"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			built := 0
			client := func() (string, error) { built++; return tt.client() }
			d := Lazy(checks, client, tt.missing, okProbe)
			if built != 0 {
				t.Fatal("the client was built before the probe ran")
			}
			rep := Run(context.Background(), d)
			if !reflect.DeepEqual(rep.Results, tt.want) {
				t.Errorf("results = %+v, want %+v", rep.Results, tt.want)
			}
			if built != 1 {
				t.Errorf("client built %d times, want 1", built)
			}
		})
	}
}

func TestRunKeepsDescriptorOrder(t *testing.T) {
	mk := func(name string, st Status) Descriptor {
		return Descriptor{Checks: []string{name}, Probe: func(context.Context) []Result { return []Result{{Check: name, Status: st}} }}
	}
	rep := Run(context.Background(), mk("a", OK), mk("b", Fail), mk("c", Warn))
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.Check)
	}
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) || rep.Healthy {
		t.Errorf("order %v healthy %v, want [a b c] false", got, rep.Healthy)
	}
}
