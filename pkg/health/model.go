// Package health is microctl's model of what Consul knows about go-micro
// services: instances with their checks and the TTL and interval they
// heartbeat with, aggregated per service; the lint rules that find
// registrations that will misbehave; the watch stream with flapping
// detection; and the measurement behind pruning critical instances.
//
// It reads Consul only through pkg/registry, and never invents what Consul
// does not say: a TTL check's TTL is returned by no endpoint, so TTL and
// interval come from the service Meta or from the operator, and time in a
// state is known only from a transition seen while watching.
package health

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// Status ranks: the worst check decides an instance's status, as it does
// for Consul's own ?passing filter and for go-micro's discovery.
func rank(status string) int {
	switch status {
	case registry.StatusPassing:
		return 0
	case registry.StatusWarning:
		return 1
	case registry.StatusCritical:
		return 2
	}
	return 2 // an unknown status is treated as the worst; Consul has no other
}

// Worst returns the worse of two statuses.
func Worst(a, b string) string {
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// AtLeast reports whether status is at least as bad as threshold.
func AtLeast(status, threshold string) bool { return rank(status) >= rank(threshold) }

// Origin says where a timing value came from.
type Origin string

const (
	FromMeta     Origin = "meta"     // the instance published it in its service Meta
	FromOperator Origin = "operator" // --ttl / --interval
	Unknown      Origin = "unknown"  // nobody said: Consul does not return it
)

// Timing is how an instance heartbeats: go-micro's RegisterTTL and
// RegisterInterval.
type Timing struct {
	TTL            time.Duration `json:"-"`
	TTLSource      Origin        `json:"ttl_source"`
	Interval       time.Duration `json:"-"`
	IntervalSource Origin        `json:"interval_source"`
	// DeregisterAfter is DeregisterCriticalServiceAfter, known only when
	// published in Meta (MetaDeregisterAfter): Consul never returns it.
	DeregisterAfter time.Duration `json:"-"`
}

// MetaDeregisterAfter is the Meta key under which a registration may
// publish its DeregisterCriticalServiceAfter (registry.Registrar does).
// go-micro itself publishes none and Consul returns none, so the lint rule
// that needs it runs only when it is there.
const MetaDeregisterAfter = registry.MetaDeregisterAfter

// Defaults are the TTL and interval the operator vouches for (--ttl,
// --interval), used for instances whose Meta says nothing.
type Defaults struct {
	TTL, Interval time.Duration
}

// TimingOf reads an instance's timing from its Meta, falling back to the
// operator's defaults. A Meta value that is not a duration is reported in
// warnings and treated as absent; never guessed.
func TimingOf(meta map[string]string, def Defaults) (Timing, []string) {
	var t Timing
	var warnings []string
	read := func(key string) (time.Duration, bool) {
		raw, ok := meta[key]
		if !ok {
			return 0, false
		}
		d, err := registry.ParseSeconds(strings.TrimSpace(raw))
		if err != nil || d <= 0 {
			warnings = append(warnings, fmt.Sprintf("Meta %s=%q is not a positive duration (want 15s or 15); ignored", key, raw))
			return 0, false
		}
		return d, true
	}
	t.TTLSource, t.IntervalSource = Unknown, Unknown
	if d, ok := read(registry.MetaRegisterTTL); ok {
		t.TTL, t.TTLSource = d, FromMeta
	} else if def.TTL > 0 {
		t.TTL, t.TTLSource = def.TTL, FromOperator
	}
	if d, ok := read(registry.MetaRegisterInterval); ok {
		t.Interval, t.IntervalSource = d, FromMeta
	} else if def.Interval > 0 {
		t.Interval, t.IntervalSource = def.Interval, FromOperator
	}
	if d, ok := read(MetaDeregisterAfter); ok {
		t.DeregisterAfter = d
	}
	return t, warnings
}

// CheckState is one check of an instance, its own or its node's.
type CheckState struct {
	registry.Check
	// Scope is "service" for the instance's own checks and "node" for its
	// node's (serfHealth, node maintenance), which Consul counts too.
	Scope string `json:"scope"`
	// Kind is the check's type as people know it: ttl, http, tcp, grpc,
	// script, alias, docker, h2ping, udp; serf for the agent's liveness
	// check; maintenance for maintenance mode.
	Kind string `json:"kind"`
}

// KindOf names a check's type. Consul leaves Type empty for serfHealth and
// for maintenance checks, which are recognised by their reserved IDs.
func KindOf(c registry.Check) string {
	switch {
	case c.CheckID == "serfHealth":
		return "serf"
	case c.CheckID == "_node_maintenance" || strings.HasPrefix(c.CheckID, "_service_maintenance:"):
		return "maintenance"
	case c.Type != "":
		return c.Type
	}
	return "unknown"
}

// Instance is one instance with everything microctl shows about it.
type Instance struct {
	Service  string `json:"service"`
	ID       string `json:"instance"`
	Node     string `json:"node"`
	Address  string `json:"address"` // the address clients dial
	Port     int    `json:"port"`
	Version  string `json:"version,omitempty"`
	Status   string `json:"status"`
	HasCheck bool   `json:"has_check"` // false: Consul reports it passing forever
	Timing
	TTLText      *string           `json:"ttl"`
	IntervalText *string           `json:"interval"`
	Checks       []CheckState      `json:"checks"`
	Decoded      registry.Decoded  `json:"decoded"`
	Meta         map[string]string `json:"meta,omitempty"`
	Tags         []string          `json:"tags"`
	// Raw is the catalog entry it was built from.
	Raw registry.ServiceInstance `json:"-"`
	// Warnings are problems reading the registration (malformed tags or
	// Meta): shown on stderr, never fatal.
	Warnings []string `json:"-"`
}

// AgentGone reports whether the instance's node has lost its agent: the
// node's serfHealth check is critical. Nothing will then renew or restore
// the instance (no heartbeat, no re-registration), so it stays in the
// catalog until Consul reaps the node, and only a catalog deregistration
// removes it. doctor (registry.stale), registry prune and registry
// deregister all decide with this one rule.
func (in Instance) AgentGone() bool {
	for _, c := range in.Checks {
		if AgentGone(c) {
			return true
		}
	}
	return false
}

// AgentGone reports whether c says its node's agent is gone.
func AgentGone(c CheckState) bool {
	return c.Scope == "node" && c.CheckID == "serfHealth" && c.Status == registry.StatusCritical
}

// Options shape how instances are built.
type Options struct {
	Defaults Defaults
	// Services, when not empty, keeps only these services.
	Services []string
}

// Build turns a catalog read into instances, sorted by service, node and
// ID. Node checks are attached to every instance on the node.
func Build(cat *registry.Catalog, opts Options) []Instance {
	nodeChecks := map[string][]registry.Check{}
	for _, n := range cat.Nodes {
		nodeChecks[n.Name] = n.Checks
	}
	var out []Instance
	// Instances of one service carry the same tags: decode each distinct
	// tag list once (500 services of 4 instances: 500 decodes, not 2,000).
	// The Decoded values are shared, and never modified.
	decoded := map[string]registry.Decoded{}
	for _, raw := range cat.Instances {
		if len(opts.Services) > 0 && !slices.Contains(opts.Services, raw.Service) {
			continue
		}
		key := strings.Join(raw.Tags, "\x00")
		d, ok := decoded[key]
		if !ok {
			d = registry.DecodeTags(raw.Tags)
			decoded[key] = d
		}
		out = append(out, newInstance(raw, nodeChecks[raw.Node], opts.Defaults, d))
	}
	slices.SortFunc(out, func(a, b Instance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// NewInstance builds one instance from its catalog entry and its node's
// checks.
func NewInstance(raw registry.ServiceInstance, nodeChecks []registry.Check, def Defaults) Instance {
	return newInstance(raw, nodeChecks, def, registry.DecodeTags(raw.Tags))
}

func newInstance(raw registry.ServiceInstance, nodeChecks []registry.Check, def Defaults, decoded registry.Decoded) Instance {
	in := Instance{Service: raw.Service, ID: raw.ID, Node: raw.Node, Address: raw.DialAddress(), Port: raw.Port,
		Status: registry.StatusPassing, Meta: raw.Meta, Tags: raw.Tags, Raw: raw, Checks: []CheckState{}}
	in.Decoded = decoded
	in.Version = in.Decoded.Version
	for _, m := range in.Decoded.Malformed {
		in.Warnings = append(in.Warnings, fmt.Sprintf("malformed go-micro tag %q (%s), shown raw", m.Tag, m.Reason))
	}
	for _, h := range in.Decoded.Hazards {
		in.Warnings = append(in.Warnings, fmt.Sprintf("tag %q: %s", h.Tag, h.Effect))
	}
	var tw []string
	in.Timing, tw = TimingOf(raw.Meta, def)
	in.Warnings = append(in.Warnings, tw...)
	in.TTLText, in.IntervalText = durText(in.TTL), durText(in.Interval)
	for _, c := range raw.Checks {
		in.Checks = append(in.Checks, CheckState{Check: c, Scope: "service", Kind: KindOf(c)})
		in.Status = Worst(in.Status, c.Status)
		in.HasCheck = true
	}
	for _, c := range nodeChecks {
		in.Checks = append(in.Checks, CheckState{Check: c, Scope: "node", Kind: KindOf(c)})
		in.Status = Worst(in.Status, c.Status)
	}
	return in
}

func durText(d time.Duration) *string {
	if d <= 0 {
		return nil
	}
	s := d.String()
	return &s
}

// Counts are instances per status.
type Counts struct {
	Instances int `json:"instances"`
	Passing   int `json:"passing"`
	Warning   int `json:"warning"`
	Critical  int `json:"critical"`
}

// Add counts one instance.
func (c *Counts) Add(status string) {
	c.Instances++
	switch status {
	case registry.StatusPassing:
		c.Passing++
	case registry.StatusWarning:
		c.Warning++
	default:
		c.Critical++
	}
}

// ServiceSummary is one line of `registry ls`.
type ServiceSummary struct {
	Name string `json:"name"`
	Counts
	Versions      []string `json:"versions"`
	Tags          []string `json:"tags"`
	MalformedTags int      `json:"malformed_tags"`
}

// Summarize aggregates instances per service, sorted by name.
func Summarize(instances []Instance) []ServiceSummary {
	byName := map[string]*ServiceSummary{}
	var order []string
	for _, in := range instances {
		s := byName[in.Service]
		if s == nil {
			s = &ServiceSummary{Name: in.Service, Versions: []string{}, Tags: []string{}}
			byName[in.Service] = s
			order = append(order, in.Service)
		}
		s.Add(in.Status)
		if in.Version != "" && !slices.Contains(s.Versions, in.Version) {
			s.Versions = append(s.Versions, in.Version)
		}
		for _, t := range in.Decoded.Other {
			if !slices.Contains(s.Tags, t) {
				s.Tags = append(s.Tags, t)
			}
		}
		s.MalformedTags += len(in.Decoded.Malformed)
	}
	slices.Sort(order)
	out := make([]ServiceSummary, 0, len(order))
	for _, n := range order {
		s := byName[n]
		slices.Sort(s.Versions)
		slices.Sort(s.Tags)
		out = append(out, *s)
	}
	return out
}

// Total counts every instance.
func Total(instances []Instance) Counts {
	var c Counts
	for _, in := range instances {
		c.Add(in.Status)
	}
	return c
}
