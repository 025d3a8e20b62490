package swarm

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
)

func TestParseCIDR(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"10.10.0.0/24", "10.10.0.0/24", ""},
		{" 10.10.0.0/16 ", "10.10.0.0/16", ""},
		{"fd00:1::/64", "fd00:1::/64", ""},
		{"10.10.0.1/24", "", "did you mean 10.10.0.0/24?"},
		{"10.10.0.0", "", "no prefix length"},
		{"10.10.0.0/33", "", "want ADDRESS/BITS"},
		{"banana", "", "want ADDRESS/BITS"},
		{"", "", "want ADDRESS/BITS"},
	}
	for _, tt := range tests {
		got, err := ParseCIDR(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCIDR(%q) err = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("ParseCIDR(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestBuildPools(t *testing.T) {
	tests := []struct {
		name                       string
		subnets, gateways, ipRange []string
		want                       []IPAMPool
		err                        string
	}{
		{"none", nil, nil, nil, nil, ""},
		{"one subnet", []string{"10.1.0.0/24"}, nil, nil, []IPAMPool{{Subnet: "10.1.0.0/24"}}, ""},
		{"gateway and range paired by containment",
			[]string{"10.1.0.0/24", "10.2.0.0/16"}, []string{"10.2.0.1", "10.1.0.254"}, []string{"10.2.8.0/21"},
			[]IPAMPool{{Subnet: "10.1.0.0/24", Gateway: "10.1.0.254"}, {Subnet: "10.2.0.0/16", Gateway: "10.2.0.1", IPRange: "10.2.8.0/21"}}, ""},
		{"gateway outside", []string{"10.1.0.0/24"}, []string{"10.9.0.1"}, nil, nil, "gateway 10.9.0.1 is in none of the subnets (10.1.0.0/24)"},
		{"gateway is network address", []string{"10.1.0.0/24"}, []string{"10.1.0.0"}, nil, nil, "network address"},
		{"two gateways one subnet", []string{"10.1.0.0/24"}, []string{"10.1.0.1", "10.1.0.2"}, nil, nil, "two gateways for subnet 10.1.0.0/24"},
		{"gateway not an IP", []string{"10.1.0.0/24"}, []string{"gw"}, nil, nil, `invalid gateway "gw"`},
		{"range larger than subnet", []string{"10.1.0.0/24"}, nil, []string{"10.1.0.0/16"}, nil, "ip-range 10.1.0.0/16 is in none"},
		{"range bad CIDR", []string{"10.1.0.0/24"}, nil, []string{"10.1.0.1/28"}, nil, "--ip-range: invalid CIDR"},
		{"gateway without subnet", nil, []string{"10.1.0.1"}, nil, nil, "need a --subnet"},
		{"overlapping subnets", []string{"10.1.0.0/16", "10.1.2.0/24"}, nil, nil, nil, "subnets 10.1.0.0/16 and 10.1.2.0/24 overlap"},
		{"bad subnet", []string{"10.1.0.5/24"}, nil, nil, nil, "did you mean 10.1.0.0/24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BuildPools(tt.subnets, tt.gateways, tt.ipRange)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want containing %q", err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseNetworkFlag(t *testing.T) {
	tests := []struct{ in, name, cidr, err string }{
		{"micro", "micro", "", ""},
		{"micro:10.10.0.0/24", "micro", "10.10.0.0/24", ""},
		{"my_net.v2-a", "my_net.v2-a", "", ""},
		{"micro:10.10.0.1/24", "", "", "did you mean 10.10.0.0/24"},
		{":10.10.0.0/24", "", "", "want NAME or NAME:CIDR"},
		{"-bad", "", "", "want NAME or NAME:CIDR"},
		{"", "", "", "want NAME or NAME:CIDR"},
		{"micro:", "", "", "invalid CIDR"},
	}
	for _, tt := range tests {
		name, cidr, err := ParseNetworkFlag(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseNetworkFlag(%q) err = %v, want containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || cidr != tt.cidr {
			t.Errorf("ParseNetworkFlag(%q) = %q, %q, %v", tt.in, name, cidr, err)
		}
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels([]string{"a=b", "c=", "d=e=f"})
	want := map[string]string{"a": "b", "c": "", "d": "e=f"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"novalue", "=v", " =v"} {
		if _, err := ParseLabels([]string{bad}); err == nil {
			t.Errorf("ParseLabels(%q) accepted", bad)
		}
	}
}

func TestDiffNetwork(t *testing.T) {
	base := func() network.Inspect {
		n := overlay("micro", "10.10.0.0/24", true, true)
		n.IPAM.Config[0].Gateway = "10.10.0.1"
		n.Labels = map[string]string{"team": "a", "extra": "x"}
		return n
	}
	want := NetworkSpec{Name: "micro", Attachable: true, Encrypted: true, Pools: []IPAMPool{{Subnet: "10.10.0.0/24"}}}
	tests := []struct {
		name   string
		want   func(NetworkSpec) NetworkSpec
		have   func(network.Inspect) network.Inspect
		fields []string
	}{
		{"identical", nil, nil, nil},
		{"no subnet asked: any subnet is fine", func(s NetworkSpec) NetworkSpec { s.Pools = nil; return s }, nil, nil},
		{"engine-chosen gateway is fine", nil, nil, nil},
		{"subnet", func(s NetworkSpec) NetworkSpec { s.Pools = []IPAMPool{{Subnet: "10.20.0.0/24"}}; return s }, nil, []string{"subnet"}},
		{"extra subnet", func(s NetworkSpec) NetworkSpec {
			s.Pools = append(s.Pools, IPAMPool{Subnet: "10.30.0.0/24"})
			return s
		}, nil, []string{"subnet"}},
		{"gateway", func(s NetworkSpec) NetworkSpec { s.Pools[0].Gateway = "10.10.0.254"; return s }, nil, []string{"gateway"}},
		{"ip-range", func(s NetworkSpec) NetworkSpec { s.Pools[0].IPRange = "10.10.0.128/25"; return s }, nil, []string{"ip-range"}},
		{"encrypted wanted, not there", nil, func(n network.Inspect) network.Inspect { delete(n.Options, "encrypted"); return n }, []string{"encrypted"}},
		{"encrypted there, not wanted", func(s NetworkSpec) NetworkSpec { s.Encrypted = false; return s }, nil, []string{"encrypted"}},
		{"internal", func(s NetworkSpec) NetworkSpec { s.Internal = true; return s }, nil, []string{"internal"}},
		{"attachable", nil, func(n network.Inspect) network.Inspect { n.Attachable = false; return n }, []string{"attachable"}},
		{"driver and scope of a local bridge", nil, func(n network.Inspect) network.Inspect {
			n.Driver, n.Scope = "bridge", "local"
			return n
		}, []string{"driver", "scope"}},
		{"label missing", func(s NetworkSpec) NetworkSpec { s.Labels = map[string]string{"owner": "b"}; return s }, nil, []string{"label owner"}},
		{"label present, extra labels ignored", func(s NetworkSpec) NetworkSpec { s.Labels = map[string]string{"team": "a"}; return s }, nil, nil},
		{"everything at once", func(s NetworkSpec) NetworkSpec {
			s.Pools = []IPAMPool{{Subnet: "10.20.0.0/24"}}
			s.Encrypted, s.Internal, s.Attachable = false, true, false
			return s
		}, nil, []string{"subnet", "encrypted", "internal", "attachable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := want
			w.Pools = append([]IPAMPool(nil), want.Pools...)
			if tt.want != nil {
				w = tt.want(w)
			}
			h := base()
			if tt.have != nil {
				h = tt.have(h)
			}
			var got []string
			for _, d := range DiffNetwork(w, h) {
				got = append(got, d.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Errorf("differences %v, want %v", got, tt.fields)
			}
		})
	}
}

func TestSubnetOverlaps(t *testing.T) {
	nets := []network.Summary{
		overlay("ingress", "10.0.0.0/24", false, false),
		{Name: "bridge", Driver: "bridge", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "172.17.0.0/16"}}}},
		overlay("micro", "10.10.0.0/24", true, false),
		{Name: "host"},
	}
	tests := []struct {
		want []string
		skip string
		hits []string
	}{
		{[]string{"10.20.0.0/24"}, "", nil},
		{[]string{"10.0.0.0/24"}, "", []string{"ingress"}},
		{[]string{"10.0.0.128/25"}, "", []string{"ingress"}},
		{[]string{"10.0.0.0/8"}, "", []string{"ingress", "micro"}},
		{[]string{"172.17.5.0/24"}, "", []string{"bridge"}},
		{[]string{"10.10.0.0/24"}, "micro", nil}, // the network itself is DiffNetwork's business
	}
	for _, tt := range tests {
		var ps []netip.Prefix
		for _, w := range tt.want {
			ps = append(ps, netip.MustParsePrefix(w))
		}
		var hits []string
		for _, o := range SubnetOverlaps(ps, nets, tt.skip) {
			hits = append(hits, o.Network)
		}
		if !reflect.DeepEqual(hits, tt.hits) {
			t.Errorf("%v: overlaps %v, want %v", tt.want, hits, tt.hits)
		}
	}
}

func TestDecideNetwork(t *testing.T) {
	all := []network.Summary{overlay("ingress", "10.0.0.0/24", false, false), overlay("micro", "10.10.0.0/24", true, false)}
	spec := func(name, subnet string, enc bool) NetworkSpec {
		s := NetworkSpec{Name: name, Attachable: true, Encrypted: enc}
		if subnet != "" {
			s.Pools = []IPAMPool{{Subnet: subnet}}
		}
		return s
	}
	tests := []struct {
		name    string
		spec    NetworkSpec
		same    []network.Inspect
		want    NetworkAction
		errType any
		errMsg  string
	}{
		{"new", spec("backend", "10.20.0.0/24", false), nil, NetworkCreate, nil, ""},
		{"new without subnet", spec("backend", "", false), nil, NetworkCreate, nil, ""},
		{"new overlapping ingress and micro", spec("backend", "10.0.0.0/8", false), nil, "", &SubnetOverlapError{},
			"network backend: subnet 10.0.0.0/8 overlaps 10.0.0.0/24 of network ingress; 10.0.0.0/8 overlaps 10.10.0.0/24 of network micro"},
		{"identical", spec("micro", "10.10.0.0/24", false), []network.Inspect{all[1]}, NetworkUnchanged, nil, ""},
		{"identical, subnet left to the engine", spec("micro", "", false), []network.Inspect{all[1]}, NetworkUnchanged, nil, ""},
		{"different", spec("micro", "10.11.0.0/24", true), []network.Inspect{all[1]}, "", &NetworkConflictError{},
			"network micro already exists with different settings: subnet is 10.10.0.0/24, want 10.11.0.0/24; encrypted is false, want true"},
		{"two of that name", spec("micro", "", false), []network.Inspect{all[1], {Name: "micro", ID: "localbridge1234567", Scope: "local"}}, "", nil,
			"2 networks are named micro"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecideNetwork(tt.spec, tt.same, all)
			if tt.errMsg != "" {
				if err == nil || err.Error() != tt.errMsg && !strings.Contains(err.Error(), tt.errMsg) {
					t.Fatalf("err = %v, want %q", err, tt.errMsg)
				}
				if tt.errType != nil && reflect.TypeOf(err) != reflect.TypeOf(tt.errType) {
					t.Errorf("err type %T, want %T", err, tt.errType)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEnsureNetwork(t *testing.T) {
	ctx := context.Background()
	f := newFake().asManager()
	spec := NetworkSpec{Name: "micro", Attachable: true, Encrypted: true, Pools: []IPAMPool{{Subnet: "10.10.0.0/24"}}, Labels: map[string]string{"a": "b"}}

	created, err := EnsureNetwork(ctx, f, spec)
	if err != nil || !created {
		t.Fatalf("first ensure: created=%v err=%v", created, err)
	}
	n := f.nets[len(f.nets)-1]
	if n.Driver != "overlay" || n.Scope != "swarm" || !n.Attachable || !IsEncrypted(n) || n.IPAM.Config[0].Subnet != "10.10.0.0/24" || n.Labels["a"] != "b" {
		t.Errorf("created %+v", n)
	}
	// Again: identical, no-op. The name filter also matches "micro2"; the
	// exact-name check must not mistake one for the other.
	f.nets = append(f.nets, overlay("micro2", "10.99.0.0/24", true, true))
	created, err = EnsureNetwork(ctx, f, spec)
	if err != nil || created {
		t.Fatalf("second ensure: created=%v err=%v", created, err)
	}
	// Different: error naming the field, nothing created.
	spec2 := spec
	spec2.Encrypted = false
	_, err = EnsureNetwork(ctx, f, spec2)
	var ce *NetworkConflictError
	if !errors.As(err, &ce) || len(ce.Diffs) != 1 || ce.Diffs[0].Field != "encrypted" {
		t.Fatalf("err = %v, want a conflict on encrypted", err)
	}
	// Overlap with another network: nothing created.
	_, err = EnsureNetwork(ctx, f, NetworkSpec{Name: "other", Attachable: true, Pools: []IPAMPool{{Subnet: "10.10.0.0/16"}}})
	var oe *SubnetOverlapError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want overlap", err)
	}
	if want := []string{"create micro"}; !reflect.DeepEqual(f.changes, want) {
		t.Errorf("changes %v, want %v", f.changes, want)
	}
	// Invalid spec: refused before the engine is asked.
	if _, err := EnsureNetwork(ctx, f, NetworkSpec{Name: "x", Pools: []IPAMPool{{Subnet: "10.1.1.1/24"}}}); err == nil {
		t.Error("invalid CIDR accepted")
	}
}

// A creator racing us wins the name; the result is judged against it.
func TestEnsureNetworkRace(t *testing.T) {
	ctx := context.Background()
	spec := NetworkSpec{Name: "micro", Attachable: true}
	for _, tt := range []struct {
		name     string
		winner   network.Inspect
		conflict bool
	}{
		{"identical winner", overlay("micro", "10.0.9.0/24", true, false), false},
		{"different winner", overlay("micro", "10.0.9.0/24", false, false), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &racyEngine{fakeEngine: newFake().asManager(), winner: tt.winner}
			created, err := EnsureNetwork(ctx, f, spec)
			var ce *NetworkConflictError
			if tt.conflict != errors.As(err, &ce) || created {
				t.Fatalf("created=%v err=%v", created, err)
			}
		})
	}
}

// racyEngine lets another creator win between our look and our create.
type racyEngine struct {
	*fakeEngine
	winner network.Inspect
}

func (r *racyEngine) NetworkCreate(ctx context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
	r.nets = append(r.nets, r.winner)
	return network.CreateResponse{}, cerrdefs.ErrConflict.WithMessage("network with name micro already exists")
}

func TestCreateOptions(t *testing.T) {
	o := NetworkSpec{Name: "n", Encrypted: true, Attachable: true, Pools: []IPAMPool{{Subnet: "fd00::/64"}}}.CreateOptions()
	if o.Driver != "overlay" || o.Scope != "swarm" || !o.Attachable || o.EnableIPv6 == nil || !*o.EnableIPv6 {
		t.Errorf("options %+v", o)
	}
	if _, ok := o.Options["encrypted"]; !ok {
		t.Error("encrypted option missing")
	}
	if o := (NetworkSpec{Name: "n"}).CreateOptions(); o.IPAM != nil || o.Options != nil {
		t.Errorf("no subnet, no encryption: got IPAM %+v options %v", o.IPAM, o.Options)
	}
}

func TestRemoveOverlay(t *testing.T) {
	ctx := context.Background()
	f := newFake().asManager()
	f.nets = append(f.nets, overlay("micro", "10.10.0.0/24", true, false), overlay("idle", "10.11.0.0/24", true, false),
		network.Inspect{Name: "bridge", ID: "bridge-id", Driver: "bridge", Scope: "local"})
	f.services = append(f.services, svcOn("web", "micro-id"), svcOn("api", "micro"), svcOn("other", "idle-x"))

	_, err := RemoveOverlay(ctx, f, "micro")
	var iu *NetworkInUseError
	if !errors.As(err, &iu) || err.Error() != "network micro is in use by 2 services: api, web" {
		t.Errorf("err = %v", err)
	}
	for _, name := range []string{"ingress", "bridge"} {
		var no *NotOverlayError
		if _, err := RemoveOverlay(ctx, f, name); !errors.As(err, &no) {
			t.Errorf("rm %s: err = %v, want NotOverlayError", name, err)
		}
	}
	var nf *NetworkNotFoundError
	if _, err := RemoveOverlay(ctx, f, "nope"); !errors.As(err, &nf) {
		t.Errorf("rm nope: err = %v", err)
	}
	if _, err := RemoveOverlay(ctx, f, "idle"); err != nil {
		t.Errorf("rm idle: %v", err)
	}
	if want := []string{"rm idle"}; !reflect.DeepEqual(f.changes, want) {
		t.Errorf("changes %v, want %v", f.changes, want)
	}
}

func TestListOverlays(t *testing.T) {
	f := newFake().asManager()
	f.nets = append(f.nets, overlay("micro", "10.10.0.0/24", true, true), network.Inspect{Name: "bridge", Driver: "bridge"})
	f.services = append(f.services, svcOn("web", "micro-id"))
	got, err := ListOverlays(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "ingress" || got[1].Name != "micro" || !got[1].Encrypted ||
		!reflect.DeepEqual(got[1].Services, []string{"web"}) || got[1].SubnetList() != "10.10.0.0/24" {
		t.Errorf("got %+v", got)
	}
	// A worker lists no services: the networks are still listed.
	f.info.Swarm.ControlAvailable = false
	if got, err := ListOverlays(context.Background(), f); err != nil || len(got) != 2 || len(got[1].Services) != 0 {
		t.Errorf("worker: %+v, %v", got, err)
	}
}

func FuzzParseNetworkFlag(f *testing.F) {
	for _, s := range []string{"micro", "micro:10.0.0.0/24", "a:b:c", ":", "x:fd00::/64", "x:10.0.0.1/24"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, cidr, err := ParseNetworkFlag(s)
		if err != nil {
			return
		}
		if !networkNameRe.MatchString(name) {
			t.Fatalf("accepted name %q", name)
		}
		if cidr != "" {
			if _, err := ParseCIDR(cidr); err != nil {
				t.Fatalf("accepted CIDR %q that does not parse back: %v", cidr, err)
			}
		}
	})
}

func FuzzBuildPools(f *testing.F) {
	f.Add("10.1.0.0/24", "10.1.0.1", "10.1.0.128/25")
	f.Add("fd00::/64", "fd00::1", "")
	f.Add("10.1.0.5/24", "x", "10.1.0.0/16")
	f.Fuzz(func(t *testing.T, subnet, gw, rng string) {
		var gws, rngs []string
		if gw != "" {
			gws = []string{gw}
		}
		if rng != "" {
			rngs = []string{rng}
		}
		pools, err := BuildPools([]string{subnet}, gws, rngs)
		if err != nil {
			return
		}
		p := netip.MustParsePrefix(pools[0].Subnet)
		if pools[0].Gateway != "" && !p.Contains(netip.MustParseAddr(pools[0].Gateway)) {
			t.Fatalf("gateway %s outside %s", pools[0].Gateway, p)
		}
		if pools[0].IPRange != "" {
			r := netip.MustParsePrefix(pools[0].IPRange)
			if !p.Contains(r.Addr()) || r.Bits() < p.Bits() {
				t.Fatalf("range %s outside %s", r, p)
			}
		}
	})
}

// lateAllocator answers inspects of a swarm network with the unallocated
// view (no driver, no subnet, no options) a few times, as a manager does
// right after the network is created.
type lateAllocator struct {
	*fakeEngine
	left int
}

func (l *lateAllocator) NetworkInspect(ctx context.Context, id string, o network.InspectOptions) (network.Inspect, error) {
	n, err := l.fakeEngine.NetworkInspect(ctx, id, o)
	if err == nil && l.left > 0 {
		l.left--
		return network.Inspect{Name: n.Name, ID: n.ID, Scope: "swarm", Attachable: n.Attachable, Labels: n.Labels}, nil
	}
	return n, err
}

func TestEnsureNetworkWaitsForAllocation(t *testing.T) {
	f := newFake().asManager()
	f.nets = append(f.nets, overlay("micro", "10.10.0.0/24", true, true))
	l := &lateAllocator{fakeEngine: f, left: 3}
	spec := NetworkSpec{Name: "micro", Attachable: true, Encrypted: true, Pools: []IPAMPool{{Subnet: "10.10.0.0/24"}}}
	if created, err := EnsureNetwork(context.Background(), l, spec); err != nil || created || l.left != 0 {
		t.Fatalf("created=%v err=%v (unallocated views left %d)", created, err, l.left)
	}
}
