package health

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Lint rule IDs. They appear in `health lint -o json` and in docs/health.md,
// and never change meaning: scripts filter on them.
const (
	RuleIntervalGETTL      = "interval-ge-ttl"      // the instance expires between two heartbeats
	RuleIntervalGTHalfTTL  = "interval-gt-half-ttl" // one lost heartbeat expires it
	RuleNoCheck            = "no-check"             // Consul will call it passing forever
	RuleDeregisterLTTTL    = "deregister-lt-ttl"    // reaped before a single TTL has elapsed
	RuleTTLMismatch        = "ttl-mismatch"         // instances of one service disagree on TTL
	RuleIntervalMismatch   = "interval-mismatch"    // … or on the interval
	RuleUnreachableAddress = "unreachable-address"  // other hosts cannot dial the address
	RuleMalformedTags      = "malformed-tags"       // go-micro clients cannot decode a tag
	RuleTagBreaksGoMicro   = "tag-breaks-go-micro"  // a plain tag makes go-micro drop all metadata/endpoints, or panic
)

// Severity of a finding.
const (
	SevError   = "error"   // it will misbehave
	SevWarning = "warning" // it may misbehave
)

// Finding is one problem with one registration (or one service, for the
// rules that compare instances).
type Finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Service  string `json:"service"`
	Instance string `json:"instance,omitempty"`
	Node     string `json:"node,omitempty"`
	Message  string `json:"message"`
	Hint     string `json:"hint,omitempty"`
}

// Subnet is a named Docker network's subnet.
type Subnet struct {
	Name   string       `json:"name"`
	Prefix netip.Prefix `json:"prefix"`
}

// Networks is what is known about the Swarm's networks. microctl learns it
// from the Docker Engine when it can (cmd/health) or from --overlay-subnet;
// without it only addresses unreachable from anywhere are found.
type Networks struct {
	Overlays  []Subnet     // the swarm's overlay networks, ingress excluded
	Ingress   []Subnet     // the routing mesh's network
	Bridges   []Subnet     // this host's bridge networks (bridge, docker_gwbridge)
	NodeAddrs []netip.Addr // swarm nodes' own addresses (host-mode ports)
}

// LintOptions configure Lint.
type LintOptions struct {
	// Networks, when not nil and holding overlays, lets the unreachable
	// address rule flag addresses outside every overlay network.
	Networks *Networks
	// NetworksUnknown says why Networks is nil, for the note.
	NetworksUnknown string
}

// LintReport is the outcome of Lint.
type LintReport struct {
	Findings []Finding `json:"findings"`
	// Instances is how many instances were examined.
	Instances int `json:"instances"`
	// Notes say what could not be checked and why.
	Notes []string `json:"notes"`
}

// consulSelf is the service every Consul server registers for itself; it
// is health-checked through serfHealth, has no check of its own, and is
// not the operator's to fix: lint skips it.
const consulSelf = "consul"

// Lint runs every rule over instances.
func Lint(instances []Instance, opts LintOptions) LintReport {
	instances = slices.DeleteFunc(slices.Clone(instances), func(in Instance) bool {
		return in.Service == consulSelf && in.ID == consulSelf
	})
	rep := LintReport{Findings: []Finding{}, Notes: []string{}, Instances: len(instances)}
	add := func(in Instance, rule, sev, msg, hint string) {
		rep.Findings = append(rep.Findings, Finding{Rule: rule, Severity: sev, Service: in.Service,
			Instance: in.ID, Node: in.Node, Message: msg, Hint: hint})
	}
	unknownTiming, hostnames, withDeregister := 0, 0, 0
	for _, in := range instances {
		if !in.HasCheck {
			add(in, RuleNoCheck, SevError, "registered without a health check: Consul reports it passing even after it dies",
				"register with a TTL (go-micro: --register_ttl) or an http/tcp check")
		}
		ttl, iv := in.TTL, in.Interval
		switch {
		case ttl <= 0 || iv <= 0:
			unknownTiming++
		case iv >= ttl:
			add(in, RuleIntervalGETTL, SevError,
				fmt.Sprintf("interval %s >= TTL %s: the TTL expires before the next heartbeat, so the instance turns critical between heartbeats", iv, ttl),
				fmt.Sprintf("heartbeat at most every TTL/2 (e.g. --register_interval %d with --register_ttl %d)", secs(ttl/2), secs(ttl)))
		case iv > ttl/2:
			add(in, RuleIntervalGTHalfTTL, SevWarning,
				fmt.Sprintf("interval %s > TTL/2 (TTL %s): a single late or lost heartbeat turns the instance critical", iv, ttl),
				fmt.Sprintf("use an interval of at most %s, or a TTL of at least %s", ttl/2, 2*iv))
		}
		if in.DeregisterAfter > 0 {
			withDeregister++
		}
		if d := in.DeregisterAfter; d > 0 && ttl > 0 && d < ttl {
			add(in, RuleDeregisterLTTTL, SevWarning,
				fmt.Sprintf("DeregisterCriticalServiceAfter %s < TTL %s: Consul may drop the instance before one TTL has passed", d, ttl),
				"go-micro uses max(1m, TTL) + 5s")
		}
		if len(in.Decoded.Malformed) > 0 {
			var tags []string
			for _, m := range in.Decoded.Malformed {
				tags = append(tags, m.Tag)
			}
			add(in, RuleMalformedTags, SevWarning,
				fmt.Sprintf("%d tag(s) look like go-micro's but do not decode: %s", len(tags), strings.Join(tags, ", ")),
				"go-micro skips a metadata or endpoint tag it cannot decode (the rest still read), and reads an undecodable first version tag as an empty version")
		}
		for _, h := range in.Decoded.Hazards {
			add(in, RuleTagBreaksGoMicro, SevError, fmt.Sprintf("tag %q: %s", h.Tag, h.Effect),
				"remove the tag, or register it after go-micro's t-/e- tags; go-micro reads only tags of the form of the first tag starting with t (or e)")
		}
		switch sev, msg, hint, verdict := judgeAddress(in, opts.Networks); verdict {
		case addrBad:
			add(in, RuleUnreachableAddress, sev, msg, hint)
		case addrHostname:
			hostnames++
		}
	}
	rep.Findings = append(rep.Findings, mismatches(instances)...)
	if unknownTiming > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d instance(s) publish no TTL or interval in Meta (%s, %s): the interval rules were not applied to them; pass --ttl and --interval to vouch for values",
			unknownTiming, "micro_register_ttl", "micro_register_interval"))
	}
	if hostnames > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d instance(s) registered a hostname, not an IP address: their reachability was not judged", hostnames))
	}
	if opts.Networks == nil || len(opts.Networks.Overlays) == 0 {
		why := cmp.Or(opts.NetworksUnknown, "no swarm manager asked and no --overlay-subnet")
		rep.Notes = append(rep.Notes, "overlay networks unknown ("+why+"): only loopback, unspecified, link-local and multicast addresses were judged")
	}
	if withDeregister < len(instances) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d instance(s) publish no Meta %s, and Consul returns DeregisterCriticalServiceAfter from no endpoint: %s was not applied to them",
			len(instances)-withDeregister, MetaDeregisterAfter, RuleDeregisterLTTTL))
	}
	slices.SortStableFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Rule, b.Rule))
	})
	return rep
}

func secs(d time.Duration) int { return max(1, int(d/time.Second)) }

// mismatches finds services whose instances disagree on TTL or interval:
// usually a half-finished rollout, or instances started by hand.
func mismatches(instances []Instance) []Finding {
	type agg struct {
		ttls, ivs map[time.Duration][]string
	}
	by := map[string]*agg{}
	var order []string
	for _, in := range instances {
		a := by[in.Service]
		if a == nil {
			a = &agg{ttls: map[time.Duration][]string{}, ivs: map[time.Duration][]string{}}
			by[in.Service] = a
			order = append(order, in.Service)
		}
		if in.TTLSource == FromMeta {
			a.ttls[in.TTL] = append(a.ttls[in.TTL], in.ID)
		}
		if in.IntervalSource == FromMeta {
			a.ivs[in.Interval] = append(a.ivs[in.Interval], in.ID)
		}
	}
	var out []Finding
	for _, svc := range order {
		a := by[svc]
		if len(a.ttls) > 1 {
			out = append(out, Finding{Rule: RuleTTLMismatch, Severity: SevWarning, Service: svc,
				Message: "instances disagree on TTL: " + describe(a.ttls),
				Hint:    "one TTL per service makes failure detection predictable; finish the rollout or restart the odd ones"})
		}
		if len(a.ivs) > 1 {
			out = append(out, Finding{Rule: RuleIntervalMismatch, Severity: SevWarning, Service: svc,
				Message: "instances disagree on interval: " + describe(a.ivs),
				Hint:    "one interval per service; finish the rollout or restart the odd ones"})
		}
	}
	return out
}

func describe(m map[time.Duration][]string) string {
	var keys []time.Duration
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s (%d instance(s))", k, len(m[k])))
	}
	return strings.Join(parts, ", ")
}

type addrVerdict int

const (
	addrOK addrVerdict = iota
	addrBad
	addrHostname
)

// judgeAddress decides whether other hosts can dial an instance. What it
// can know: loopback, unspecified, link-local and multicast addresses are
// unreachable from anywhere else; with the swarm's networks known, an
// address outside every overlay network and every node's own address is
// unreachable from other hosts (a container's bridge address, the ingress
// network's). What it cannot know: whether a firewall lets traffic
// through, whether a hostname resolves elsewhere, or routing between
// hosts.
func judgeAddress(in Instance, nets *Networks) (sev, msg, hint string, v addrVerdict) {
	raw := in.Address
	if raw == "" {
		return SevError, "registered no address and its node has none", "register the overlay network address (go-micro: --server_advertise)", addrBad
	}
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return "", "", "", addrHostname
	}
	a = a.Unmap()
	src := "address"
	if in.Raw.Address == "" {
		src = "node address (the instance registered none)"
	}
	hint = "register an address other hosts can dial: on Swarm, the overlay network address (go-micro: --server_advertise, or MICRO_SERVER_ADVERTISE)"
	switch {
	case a.IsLoopback():
		return SevError, fmt.Sprintf("loopback %s %s: reachable only from the same host, and not from other containers", src, a), hint, addrBad
	case a.IsUnspecified():
		return SevError, fmt.Sprintf("unspecified %s %s: not an address anyone can dial", src, a), hint, addrBad
	case a.IsLinkLocalUnicast():
		return SevError, fmt.Sprintf("link-local %s %s: not routed beyond its own link", src, a), hint, addrBad
	case a.IsMulticast():
		return SevError, fmt.Sprintf("multicast %s %s", src, a), hint, addrBad
	}
	if nets == nil || len(nets.Overlays) == 0 {
		return "", "", "", addrOK
	}
	if s := inSubnets(a, nets.Overlays); s != nil {
		return "", "", "", addrOK
	}
	if slices.Contains(nets.NodeAddrs, a) {
		return "", "", "", addrOK
	}
	if s := inSubnets(a, nets.Ingress); s != nil {
		return SevWarning, fmt.Sprintf("%s %s is on the ingress network %s (%s): only the routing mesh reaches it, other services cannot", src, a, s.Name, s.Prefix),
			hint, addrBad
	}
	overlays := make([]string, 0, len(nets.Overlays))
	for _, s := range nets.Overlays {
		overlays = append(overlays, fmt.Sprintf("%s %s", s.Name, s.Prefix))
	}
	if s := inSubnets(a, nets.Bridges); s != nil {
		return SevWarning, fmt.Sprintf("%s %s is on the bridge network %s (%s), not on an overlay network: other hosts cannot reach it", src, a, s.Name, s.Prefix),
			"attach the service to an overlay network (" + strings.Join(overlays, ", ") + ") and register that address", addrBad
	}
	return SevWarning, fmt.Sprintf("%s %s is in no overlay network (%s) and is no swarm node's address: other hosts may not reach it", src, a, strings.Join(overlays, ", ")),
		hint, addrBad
}

func inSubnets(a netip.Addr, subnets []Subnet) *Subnet {
	for i := range subnets {
		if subnets[i].Prefix.Contains(a) {
			return &subnets[i]
		}
	}
	return nil
}
