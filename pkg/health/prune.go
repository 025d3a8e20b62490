package health

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// Consul records no time of change, so "critical for longer than D" cannot
// be read; it is measured. An instance critical now whose critical checks
// still carry the same ModifyIndex D later has been critical for all of D:
// any status change, even one undone at once, moves the ModifyIndex. (An
// output-only change moves it too; such an instance is conservatively left
// alone.)

// PruneOptions configure ObserveCritical.
type PruneOptions struct {
	// CriticalFor is how long an instance must have stayed critical. 0
	// takes every instance critical now, without observing.
	CriticalFor time.Duration
	Services    []string
	Defaults    Defaults
	// Progress, when set, is told what the observation is doing.
	Progress func(msg string)
	// For tests.
	Sleep func(ctx context.Context, d time.Duration) error
}

// PruneCandidate is an instance found critical.
type PruneCandidate struct {
	Instance
	// CriticalChecks are the checks that make it critical, with the
	// ModifyIndex they had when first seen critical.
	CriticalChecks []registry.Check `json:"critical_checks"`
	// NodeCritical is true when its node's serfHealth is critical: the
	// agent that owns it looks gone.
	NodeCritical bool `json:"node_critical"`
	// ObservedFor is how long it was seen critical without a change.
	ObservedFor Seconds `json:"observed_critical_seconds"`
}

// Spared is a candidate that was not kept, and why.
type Spared struct {
	Service  string `json:"service"`
	Instance string `json:"instance"`
	Node     string `json:"node"`
	Reason   string `json:"reason"`
}

// Observation is the outcome of ObserveCritical.
type Observation struct {
	Candidates []PruneCandidate `json:"candidates"`
	Spared     []Spared         `json:"spared"`
}

// CatalogReader is what ObserveCritical reads; *registry.Client is one.
type CatalogReader interface {
	Catalog(ctx context.Context) (*registry.Catalog, error)
}

// ObserveCritical finds the instances that are critical and stay so, with
// no change to their critical checks, for opts.CriticalFor. It blocks for
// that long when any instance is critical at the start.
func ObserveCritical(ctx context.Context, src CatalogReader, opts PruneOptions) (Observation, error) {
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	first, err := src.Catalog(ctx)
	if err != nil {
		return Observation{}, err
	}
	start := time.Now()
	cands := criticalOf(first, opts)
	obs := Observation{Candidates: []PruneCandidate{}, Spared: []Spared{}}
	if len(cands) == 0 || opts.CriticalFor <= 0 {
		obs.Candidates = append(obs.Candidates, cands...)
		return obs, nil
	}
	progress(fmt.Sprintf("%d critical instance(s); watching them for %s to confirm they stay critical (Consul records no time of change)",
		len(cands), opts.CriticalFor))
	if err := opts.Sleep(ctx, opts.CriticalFor); err != nil {
		return Observation{}, err
	}
	last, err := src.Catalog(ctx)
	if err != nil {
		return Observation{}, err
	}
	observed := Seconds(time.Since(start).Seconds())
	now := map[string]PruneCandidate{}
	for _, c := range criticalOf(last, opts) {
		now[c.Raw.Key()] = c
	}
	for _, c := range cands {
		later, ok := now[c.Raw.Key()]
		switch {
		case !ok && !present(last, c.Raw.Key()):
			obs.Spared = append(obs.Spared, Spared{c.Service, c.ID, c.Node, "gone during the observation"})
		case !ok:
			obs.Spared = append(obs.Spared, Spared{c.Service, c.ID, c.Node, "recovered during the observation"})
		case !sameChecks(c.CriticalChecks, later.CriticalChecks):
			obs.Spared = append(obs.Spared, Spared{c.Service, c.ID, c.Node, "its checks changed during the observation"})
		default:
			later.ObservedFor = observed
			obs.Candidates = append(obs.Candidates, later)
		}
	}
	return obs, nil
}

func present(cat *registry.Catalog, key string) bool {
	return slices.ContainsFunc(cat.Instances, func(in registry.ServiceInstance) bool { return in.Key() == key })
}

func criticalOf(cat *registry.Catalog, opts PruneOptions) []PruneCandidate {
	var out []PruneCandidate
	for _, in := range Build(cat, Options{Defaults: opts.Defaults, Services: opts.Services}) {
		if in.Status != registry.StatusCritical {
			continue
		}
		c := PruneCandidate{Instance: in, NodeCritical: in.AgentGone()}
		for _, ch := range in.Checks {
			if ch.Status == registry.StatusCritical {
				c.CriticalChecks = append(c.CriticalChecks, ch.Check)
			}
		}
		out = append(out, c)
	}
	return out
}

func sameChecks(a, b []registry.Check) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key() != b[i].Key() || a[i].ModifyIndex != b[i].ModifyIndex || a[i].Status != b[i].Status {
			return false
		}
	}
	return true
}
