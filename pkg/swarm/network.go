package swarm

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stringid"
)

// Network defaults: what `microctl swarm init` creates and what go-micro
// services share to reach each other by container address.
const (
	DefaultNetworkName = "micro"
	OverlayDriver      = "overlay"
	SwarmScope         = "swarm"

	// optEncrypted is the overlay driver option that turns on IPsec between
	// nodes. Only its presence counts (docker sets it to ""); a misspelt
	// option would be ignored silently by the engine, so microctl sets it
	// itself rather than passing user-typed driver options through.
	optEncrypted = "encrypted"
)

// IPAMPool is one subnet of a network, with the optional gateway and the
// optional sub-range that containers get addresses from.
type IPAMPool struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	IPRange string `json:"ip_range"`
}

// NetworkSpec is a network as microctl wants it. The zero Driver and Scope
// mean overlay and swarm. Pools may be empty: the swarm then allocates a
// subnet from its default address pool, and any subnet it has is accepted.
type NetworkSpec struct {
	Name       string
	Driver     string
	Scope      string
	Pools      []IPAMPool
	Encrypted  bool
	Internal   bool
	Attachable bool
	Labels     map[string]string
}

func (s NetworkSpec) driver() string {
	if s.Driver == "" {
		return OverlayDriver
	}
	return s.Driver
}

func (s NetworkSpec) scope() string {
	if s.Scope == "" {
		return SwarmScope
	}
	return s.Scope
}

// CreateOptions is the Docker API request for the spec.
func (s NetworkSpec) CreateOptions() network.CreateOptions {
	o := network.CreateOptions{
		Driver:     s.driver(),
		Scope:      s.scope(),
		Internal:   s.Internal,
		Attachable: s.Attachable,
		Labels:     s.Labels,
	}
	if s.Encrypted {
		o.Options = map[string]string{optEncrypted: ""}
	}
	if len(s.Pools) > 0 {
		o.IPAM = &network.IPAM{Driver: "default"}
		v6 := false
		for _, p := range s.Pools {
			o.IPAM.Config = append(o.IPAM.Config, network.IPAMConfig{Subnet: p.Subnet, Gateway: p.Gateway, IPRange: p.IPRange})
			if pf, err := netip.ParsePrefix(p.Subnet); err == nil && pf.Addr().Is6() {
				v6 = true
			}
		}
		if v6 {
			o.EnableIPv6 = &v6
		}
	}
	return o
}

// Describe is the spec in a few words, for progress lines and messages.
func (s NetworkSpec) Describe() string {
	parts := []string{s.driver()}
	for _, p := range s.Pools {
		parts = append(parts, p.Subnet)
	}
	if len(s.Pools) == 0 {
		parts = append(parts, "subnet from the swarm's pool")
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{s.Attachable, "attachable"}, {s.Encrypted, "encrypted"}, {s.Internal, "internal"}} {
		if f.on {
			parts = append(parts, f.name)
		}
	}
	return strings.Join(parts, ", ")
}

// networkNameRe is the engine's own rule for network names.
var networkNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// SpecError is a network spec that cannot be right, found before anything
// is sent to the engine.
type SpecError struct {
	Network string
	Msg     string
}

func (e *SpecError) Error() string {
	if e.Network == "" {
		return e.Msg
	}
	return fmt.Sprintf("network %s: %s", e.Network, e.Msg)
}

// ParseCIDR parses a subnet and insists that it is written as a network
// address: 10.1.2.3/24 is refused with the address meant (10.1.2.0/24),
// because an engine would either reject it obscurely or silently use the
// masked form, and either way the user did not get what they typed.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		if _, aerr := netip.ParseAddr(s); aerr == nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: no prefix length (e.g. %s/24)", s, s)
		}
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q (want ADDRESS/BITS, e.g. 10.10.0.0/24)", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: not a network address (did you mean %s?)", s, m)
	}
	return p, nil
}

// BuildPools pairs gateways and IP ranges with the subnets that contain
// them, the way `docker network create` does with its repeated --subnet,
// --gateway and --ip-range flags.
func BuildPools(subnets, gateways, ipRanges []string) ([]IPAMPool, error) {
	if len(subnets) == 0 && (len(gateways) > 0 || len(ipRanges) > 0) {
		return nil, fmt.Errorf("--gateway and --ip-range need a --subnet")
	}
	if len(subnets) == 0 {
		return nil, nil
	}
	pools := make([]IPAMPool, 0, len(subnets))
	prefixes := make([]netip.Prefix, 0, len(subnets))
	for _, s := range subnets {
		p, err := ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		for i, q := range prefixes {
			if q.Overlaps(p) {
				return nil, fmt.Errorf("subnets %s and %s overlap", pools[i].Subnet, p)
			}
		}
		prefixes = append(prefixes, p)
		pools = append(pools, IPAMPool{Subnet: p.String()})
	}
	owner := func(what string, in func(i int) bool) (int, error) {
		found := -1
		for i := range prefixes {
			if in(i) {
				found = i
			}
		}
		if found < 0 {
			return 0, fmt.Errorf("%s is in none of the subnets (%s)", what, strings.Join(poolSubnets(pools), ", "))
		}
		return found, nil
	}
	for _, g := range gateways {
		a, err := netip.ParseAddr(strings.TrimSpace(g))
		if err != nil {
			return nil, fmt.Errorf("invalid gateway %q: not an IP address", g)
		}
		i, err := owner("gateway "+a.String(), func(i int) bool { return prefixes[i].Contains(a) })
		if err != nil {
			return nil, err
		}
		if pools[i].Gateway != "" {
			return nil, fmt.Errorf("two gateways for subnet %s: %s and %s", pools[i].Subnet, pools[i].Gateway, a)
		}
		if a == prefixes[i].Addr() {
			return nil, fmt.Errorf("gateway %s is the network address of %s", a, pools[i].Subnet)
		}
		pools[i].Gateway = a.String()
	}
	for _, r := range ipRanges {
		rp, err := ParseCIDR(r)
		if err != nil {
			return nil, fmt.Errorf("--ip-range: %w", err)
		}
		i, err := owner("ip-range "+rp.String(), func(i int) bool {
			return prefixes[i].Contains(rp.Addr()) && rp.Bits() >= prefixes[i].Bits()
		})
		if err != nil {
			return nil, err
		}
		if pools[i].IPRange != "" {
			return nil, fmt.Errorf("two ip-ranges for subnet %s: %s and %s", pools[i].Subnet, pools[i].IPRange, rp)
		}
		pools[i].IPRange = rp.String()
	}
	return pools, nil
}

func poolSubnets(pools []IPAMPool) []string {
	out := make([]string, len(pools))
	for i, p := range pools {
		out[i] = p.Subnet
	}
	return out
}

// Validate checks a spec without the engine: the name, each CIDR, and that
// gateways and ranges sit inside their subnets.
func (s NetworkSpec) Validate() error {
	if !networkNameRe.MatchString(s.Name) {
		return &SpecError{Msg: fmt.Sprintf("invalid network name %q: letters, digits, '_', '.' and '-', starting with a letter or digit", s.Name)}
	}
	var subnets, gateways, ranges []string
	for _, p := range s.Pools {
		subnets = append(subnets, p.Subnet)
		if p.Gateway != "" {
			gateways = append(gateways, p.Gateway)
		}
		if p.IPRange != "" {
			ranges = append(ranges, p.IPRange)
		}
	}
	if _, err := BuildPools(subnets, gateways, ranges); err != nil {
		return &SpecError{Network: s.Name, Msg: err.Error()}
	}
	return nil
}

// ParseNetworkFlag parses `--network NAME[:CIDR]` of `swarm init`.
func ParseNetworkFlag(v string) (name, cidr string, err error) {
	name, cidr, hasCIDR := strings.Cut(v, ":")
	if !networkNameRe.MatchString(name) {
		return "", "", fmt.Errorf("invalid --network %q: want NAME or NAME:CIDR, e.g. micro:10.10.0.0/24", v)
	}
	if hasCIDR {
		p, err := ParseCIDR(cidr)
		if err != nil {
			return "", "", fmt.Errorf("--network %s: %w", name, err)
		}
		cidr = p.String()
	}
	return name, cidr, nil
}

// ParseLabels parses repeated k=v flags. An empty key is refused; an empty
// value is allowed (docker allows "k=").
func ParseLabels(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("invalid label %q: want KEY=VALUE", kv)
		}
		m[k] = v
	}
	return m, nil
}

// NetworkDiff is one way an existing network differs from the spec.
type NetworkDiff struct {
	Field string `json:"field"` // subnet, gateway, ip-range, encrypted, internal, attachable, driver, scope, label
	Have  string `json:"have"`
	Want  string `json:"want"`
}

func (d NetworkDiff) String() string {
	return fmt.Sprintf("%s is %s, want %s", d.Field, d.Have, d.Want)
}

// IsEncrypted reports whether an overlay network encrypts its traffic.
func IsEncrypted(n network.Inspect) bool {
	_, ok := n.Options[optEncrypted]
	return ok
}

// DiffNetwork compares what exists with what is wanted, field by field.
// Subnets, gateways and ranges are compared only when the spec names them
// (otherwise the engine chose them and any choice is fine); the flags are
// always compared, so an unencrypted network is never taken for an
// encrypted one.
func DiffNetwork(want NetworkSpec, have network.Inspect) []NetworkDiff {
	var d []NetworkDiff
	add := func(field, h, w string) {
		if h != w {
			d = append(d, NetworkDiff{Field: field, Have: h, Want: w})
		}
	}
	add("driver", have.Driver, want.driver())
	add("scope", have.Scope, want.scope())
	if len(want.Pools) > 0 {
		haveBy := map[string]network.IPAMConfig{}
		var haveSubnets []string
		for _, c := range have.IPAM.Config {
			key := canonicalCIDR(c.Subnet)
			haveBy[key] = c
			haveSubnets = append(haveSubnets, key)
		}
		wantSubnets := poolSubnets(want.Pools)
		for i := range wantSubnets {
			wantSubnets[i] = canonicalCIDR(wantSubnets[i])
		}
		add("subnet", listOrNone(haveSubnets), listOrNone(wantSubnets))
		for _, p := range want.Pools {
			c, ok := haveBy[canonicalCIDR(p.Subnet)]
			if !ok {
				continue // already reported as a subnet difference
			}
			if p.Gateway != "" {
				add("gateway", orNone(c.Gateway), p.Gateway)
			}
			if p.IPRange != "" {
				add("ip-range", orNone(canonicalCIDR(c.IPRange)), canonicalCIDR(p.IPRange))
			}
		}
	}
	add("encrypted", fmt.Sprint(IsEncrypted(have)), fmt.Sprint(want.Encrypted))
	add("internal", fmt.Sprint(have.Internal), fmt.Sprint(want.Internal))
	add("attachable", fmt.Sprint(have.Attachable), fmt.Sprint(want.Attachable))
	keys := make([]string, 0, len(want.Labels))
	for k := range want.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h, ok := have.Labels[k]
		if !ok {
			h = "<unset>"
		}
		add("label "+k, h, want.Labels[k])
	}
	return d
}

func canonicalCIDR(s string) string {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked().String()
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "<none>"
	}
	l = slices.Clone(l)
	sort.Strings(l)
	return strings.Join(l, ",")
}

// NetworkConflictError: a network with the name exists and differs from the
// spec. microctl never reuses it silently.
type NetworkConflictError struct {
	Name  string
	Diffs []NetworkDiff
}

func (e *NetworkConflictError) Error() string {
	parts := make([]string, len(e.Diffs))
	for i, d := range e.Diffs {
		parts[i] = d.String()
	}
	return fmt.Sprintf("network %s already exists with different settings: %s", e.Name, strings.Join(parts, "; "))
}

// Hint says what to do about it.
func (e *NetworkConflictError) Hint() string {
	return fmt.Sprintf("remove it first with microctl network rm %s, or ask for the settings it has", e.Name)
}

// Overlap is a wanted subnet that overlaps one of an existing network.
type Overlap struct {
	Subnet        string `json:"subnet"`
	Network       string `json:"network"`
	NetworkSubnet string `json:"network_subnet"`
}

// SubnetOverlapError: a wanted subnet overlaps subnets already in use.
type SubnetOverlapError struct {
	Name     string // the network being created
	Overlaps []Overlap
}

func (e *SubnetOverlapError) Error() string {
	parts := make([]string, len(e.Overlaps))
	for i, o := range e.Overlaps {
		parts[i] = fmt.Sprintf("%s overlaps %s of network %s", o.Subnet, o.NetworkSubnet, o.Network)
	}
	return fmt.Sprintf("network %s: subnet %s", e.Name, strings.Join(parts, "; "))
}

// Hint says what to do about it.
func (e *SubnetOverlapError) Hint() string {
	return "choose a free subnet; microctl network ls shows the subnets in use"
}

// SubnetOverlaps returns every overlap between the wanted subnets and the
// subnets of the given networks, skipping the network named skip (the one
// being ensured, which DiffNetwork judges instead). Swarm itself lets two
// overlay networks share a subnet and routing then breaks in ways that are
// hard to see, so microctl refuses up front.
func SubnetOverlaps(want []netip.Prefix, nets []network.Summary, skip string) []Overlap {
	var out []Overlap
	for _, n := range nets {
		if n.Name == skip && skip != "" {
			continue
		}
		for _, c := range n.IPAM.Config {
			have, err := netip.ParsePrefix(c.Subnet)
			if err != nil {
				continue
			}
			for _, w := range want {
				if w.Overlaps(have) {
					out = append(out, Overlap{Subnet: w.String(), Network: n.Name, NetworkSubnet: have.Masked().String()})
				}
			}
		}
	}
	return out
}

// CheckSubnetOverlap returns a SubnetOverlapError when any subnet of spec
// overlaps a subnet of nets (other than the network of the same name).
func CheckSubnetOverlap(spec NetworkSpec, nets []network.Summary) error {
	var want []netip.Prefix
	for _, p := range spec.Pools {
		if pf, err := netip.ParsePrefix(p.Subnet); err == nil {
			want = append(want, pf.Masked())
		}
	}
	if ov := SubnetOverlaps(want, nets, spec.Name); len(ov) > 0 {
		return &SubnetOverlapError{Name: spec.Name, Overlaps: ov}
	}
	return nil
}

// NetworkAction is what ensuring a network will do.
type NetworkAction string

const (
	NetworkCreate    NetworkAction = "create"
	NetworkUnchanged NetworkAction = "unchanged"
)

// DecideNetwork is the idempotency decision for one network, without the
// engine: same (the networks with exactly spec.Name; more than one is
// ambiguous), all (every network the engine lists, for the overlap check).
// An identical network is left alone; a different one is a
// NetworkConflictError naming each difference; a new one must not overlap
// a subnet in use.
func DecideNetwork(spec NetworkSpec, same []network.Inspect, all []network.Summary) (NetworkAction, error) {
	switch len(same) {
	case 0:
		if err := CheckSubnetOverlap(spec, all); err != nil {
			return "", err
		}
		return NetworkCreate, nil
	case 1:
		if d := DiffNetwork(spec, same[0]); len(d) > 0 {
			return "", &NetworkConflictError{Name: spec.Name, Diffs: d}
		}
		return NetworkUnchanged, nil
	}
	ids := make([]string, len(same))
	for i, n := range same {
		ids[i] = stringid.TruncateID(n.ID) + " (" + n.Scope + ")"
	}
	return "", fmt.Errorf("%d networks are named %s: %s; refusing to guess which one is meant", len(same), spec.Name, strings.Join(ids, ", "))
}

// NetworkAPI is what network management needs from the Docker client.
type NetworkAPI interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	DaemonHost() string
}

// networksNamed returns the networks whose name is exactly name. The
// engine's name filter matches substrings, so the list is filtered again.
func networksNamed(ctx context.Context, cli netReader, name string) ([]network.Inspect, error) {
	list, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return nil, ClassifyEngine(cli.DaemonHost(), err)
	}
	var out []network.Inspect
	for _, n := range list {
		if n.Name != name {
			continue
		}
		// The list carries no driver options for some engines; inspect
		// for the encrypted flag.
		full, err := inspectAllocated(ctx, cli, n.ID)
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				continue // removed between list and inspect
			}
			return nil, ClassifyEngine(cli.DaemonHost(), err)
		}
		out = append(out, full)
	}
	return out, nil
}

// allocationWait bounds how long inspectAllocated waits for the swarm's
// allocator; it takes milliseconds on a healthy manager.
var allocationWait = 15 * time.Second

// inspectAllocated inspects a network and, when it is a swarm network the
// manager has not allocated yet (just created: the engine then reports no
// driver, no subnet and no options), waits until it has. Judging the
// unallocated view would report differences that are not there.
func inspectAllocated(ctx context.Context, cli netReader, id string) (network.Inspect, error) {
	deadline := time.Now().Add(allocationWait)
	for {
		n, err := cli.NetworkInspect(ctx, id, network.InspectOptions{})
		if err != nil || n.Scope != SwarmScope || n.Driver != "" || time.Now().After(deadline) {
			return n, err
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// PlanNetwork reads the engine and decides what ensuring spec would do,
// without changing anything.
func PlanNetwork(ctx context.Context, cli NetworkAPI, spec NetworkSpec) (NetworkAction, error) {
	if err := spec.Validate(); err != nil {
		return "", err
	}
	same, err := networksNamed(ctx, cli, spec.Name)
	if err != nil {
		return "", err
	}
	var all []network.Summary
	if len(same) == 0 && len(spec.Pools) > 0 {
		if all, err = cli.NetworkList(ctx, network.ListOptions{}); err != nil {
			return "", ClassifyEngine(cli.DaemonHost(), err)
		}
	}
	return DecideNetwork(spec, same, all)
}

// EnsureNetwork makes sure a network like spec exists: created reports
// whether this call made it. An identical network is left alone (created
// false, nil); a different one is a *NetworkConflictError naming every
// difference; a subnet that overlaps a network in use is a
// *SubnetOverlapError. Safe to call concurrently with another creator: a
// name clash at create time is judged again against what won.
func EnsureNetwork(ctx context.Context, cli NetworkAPI, spec NetworkSpec) (created bool, err error) {
	action, err := PlanNetwork(ctx, cli, spec)
	if err != nil || action == NetworkUnchanged {
		return false, err
	}
	resp, err := cli.NetworkCreate(ctx, spec.Name, spec.CreateOptions())
	if err != nil {
		if cerrdefs.IsConflict(err) {
			// Someone else created it between our look and our create.
			if action, perr := PlanNetwork(ctx, cli, spec); perr == nil && action == NetworkUnchanged {
				return false, nil
			} else if perr != nil {
				return false, perr
			}
		}
		return false, fmt.Errorf("create network %s: %w", spec.Name, ClassifyEngine(cli.DaemonHost(), err))
	}
	// Return once the swarm has allocated it, so that what the caller
	// reads back (and a concurrent ensure judges) is the real network.
	if _, err := inspectAllocated(ctx, cli, resp.ID); err != nil && !cerrdefs.IsNotFound(err) {
		return true, fmt.Errorf("network %s created, but reading it back failed: %w", spec.Name, ClassifyEngine(cli.DaemonHost(), err))
	}
	return true, nil
}
