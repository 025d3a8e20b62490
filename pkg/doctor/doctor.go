// Package doctor runs health checks over a deployment and collects one
// verdict per check. The checks themselves live with the package that knows
// the subsystem (pkg/swarm for the Docker Engine, pkg/registry for Consul,
// and so on); this package only runs them and aggregates.
package doctor

import (
	"context"
	"sync"

	"github.com/microctl/microctl/internal/hint"
)

// Status is a check's verdict.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works, but something needs attention
	Fail Status = "fail" // broken: doctor exits 3
	Skip Status = "skip" // not run because a check it depends on failed
)

// Result is one check's outcome. The JSON field names are part of
// `microctl doctor -o json` and stay stable.
type Result struct {
	Check  string `json:"check"`  // dotted name, e.g. "docker.swarm"
	Status Status `json:"status"` // ok, warn, fail or skip
	Detail string `json:"detail"` // what was found, one line
	Hint   string `json:"hint,omitempty"`
}

// Probe runs a group of related checks in order (later ones usually depend
// on earlier ones: no API version without a reachable engine) and returns
// their results. Probes run concurrently with each other.
type Probe func(ctx context.Context) []Result

// Report is the outcome of a doctor run.
type Report struct {
	Results []Result `json:"checks"`
	Healthy bool     `json:"healthy"` // false when any check failed
}

// Counts returns how many checks ended in each status.
func (r Report) Counts() map[Status]int {
	n := map[Status]int{}
	for _, res := range r.Results {
		n[res.Status]++
	}
	return n
}

// Run runs every descriptor's probe concurrently and returns the results in
// descriptor order, so the output is stable from one run to the next.
func Run(ctx context.Context, descs ...Descriptor) Report {
	groups := make([][]Result, len(descs))
	var wg sync.WaitGroup
	for i, d := range descs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups[i] = d.Probe(ctx)
		}()
	}
	wg.Wait()
	rep := Report{Healthy: true}
	for _, g := range groups {
		for _, res := range g {
			if res.Status == Fail {
				rep.Healthy = false
			}
			rep.Results = append(rep.Results, res)
		}
	}
	return rep
}

// Skipped returns a skip result for each named check, for a probe that
// cannot go on after a failure.
func Skipped(reason string, checks ...string) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, Result{Check: c, Status: Skip, Detail: reason})
	}
	return out
}

// HintOf returns the hint carried by err, or "": internal/hint.Of, kept
// here so probes need import only this package.
func HintOf(err error) string { return hint.Of(err) }
