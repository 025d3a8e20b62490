package health

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/microctl/microctl/pkg/registry"
)

// inst builds an instance the way Build does, from a catalog entry.
func inst(svc, id, addr string, meta map[string]string, checked bool, tags ...string) Instance {
	raw := registry.ServiceInstance{ID: id, Service: svc, Node: "n1", NodeAddress: "10.0.0.1", Address: addr, Port: 8080,
		Meta: meta, Tags: tags}
	if checked {
		raw.Checks = []registry.Check{{Node: "n1", CheckID: "service:" + id, ServiceID: id, Status: "passing", Type: "ttl"}}
	}
	return NewInstance(raw, nil, Defaults{})
}

func timing(ttl, iv string) map[string]string {
	m := map[string]string{}
	if ttl != "" {
		m[registry.MetaRegisterTTL] = ttl
	}
	if iv != "" {
		m[registry.MetaRegisterInterval] = iv
	}
	return m
}

func rules(rep LintReport) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, f.Rule+":"+f.Severity)
	}
	return out
}

func TestLintRules(t *testing.T) {
	overlay := &Networks{
		Overlays:  []Subnet{{"micro", netip.MustParsePrefix("10.0.1.0/24")}},
		Ingress:   []Subnet{{"ingress", netip.MustParsePrefix("10.0.0.0/24")}},
		Bridges:   []Subnet{{"docker_gwbridge", netip.MustParsePrefix("172.18.0.0/16")}},
		NodeAddrs: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
	}
	tests := []struct {
		name      string
		instances []Instance
		nets      *Networks
		want      []string
	}{
		{"the seed's 15s/10s: one lost heartbeat expires it",
			[]Instance{inst("s", "s-1", "10.0.1.5", timing("15s", "10s"), true)}, nil,
			[]string{"interval-gt-half-ttl:warning"}},
		{"go-micro's defaults 90s/30s are fine",
			[]Instance{inst("s", "s-1", "10.0.1.5", timing("90", "30"), true)}, nil, nil},
		{"exactly half is fine", []Instance{inst("s", "s-1", "10.0.1.5", timing("10s", "5s"), true)}, nil, nil},
		{"interval equal to TTL",
			[]Instance{inst("s", "s-1", "10.0.1.5", timing("10s", "10s"), true)}, nil, []string{"interval-ge-ttl:error"}},
		{"interval above TTL",
			[]Instance{inst("s", "s-1", "10.0.1.5", timing("2s", "3s"), true)}, nil, []string{"interval-ge-ttl:error"}},
		{"unknown timing is not judged", []Instance{inst("s", "s-1", "10.0.1.5", nil, true)}, nil, nil},
		{"no check", []Instance{inst("s", "s-1", "10.0.1.5", nil, false)}, nil, []string{"no-check:error"}},
		{"deregister before TTL (published in Meta)",
			[]Instance{inst("s", "s-1", "10.0.1.5", map[string]string{"micro_register_ttl": "2m", "micro_register_interval": "30s", MetaDeregisterAfter: "1m"}, true)},
			nil, []string{"deregister-lt-ttl:warning"}},
		{"TTL and interval mismatch within a service",
			[]Instance{inst("s", "s-1", "10.0.1.5", timing("30s", "10s"), true), inst("s", "s-2", "10.0.1.6", timing("60s", "20s"), true),
				inst("t", "t-1", "10.0.1.7", timing("60s", "20s"), true)},
			nil, []string{"interval-mismatch:warning", "ttl-mismatch:warning"}},
		{"loopback", []Instance{inst("s", "s-1", "127.0.0.1", nil, true)}, nil, []string{"unreachable-address:error"}},
		{"IPv6 loopback", []Instance{inst("s", "s-1", "::1", nil, true)}, nil, []string{"unreachable-address:error"}},
		{"unspecified", []Instance{inst("s", "s-1", "0.0.0.0", nil, true)}, nil, []string{"unreachable-address:error"}},
		{"link-local", []Instance{inst("s", "s-1", "169.254.10.1", nil, true)}, nil, []string{"unreachable-address:error"}},
		{"IPv4-mapped loopback", []Instance{inst("s", "s-1", "::ffff:127.0.0.1", nil, true)}, nil, []string{"unreachable-address:error"}},
		{"empty address falls back to a loopback node address",
			[]Instance{func() Instance {
				in := inst("s", "s-1", "", nil, true)
				in.Address = "127.0.0.1"
				return in
			}()}, nil, []string{"unreachable-address:error"}},
		{"private address, networks unknown: cannot judge", []Instance{inst("s", "s-1", "172.18.0.5", nil, true)}, nil, nil},
		{"hostname: cannot judge", []Instance{inst("s", "s-1", "greeter.internal", nil, true)}, overlay, nil},
		{"on the overlay", []Instance{inst("s", "s-1", "10.0.1.5", nil, true)}, overlay, nil},
		{"a swarm node's own address (host-mode port)", []Instance{inst("s", "s-1", "192.168.1.10", nil, true)}, overlay, nil},
		{"on the bridge: the Swarm article's trap", []Instance{inst("s", "s-1", "172.18.0.5", nil, true)}, overlay, []string{"unreachable-address:warning"}},
		{"on ingress", []Instance{inst("s", "s-1", "10.0.0.7", nil, true)}, overlay, []string{"unreachable-address:warning"}},
		{"elsewhere", []Instance{inst("s", "s-1", "192.168.7.7", nil, true)}, overlay, []string{"unreachable-address:warning"}},
		{"malformed tags", []Instance{inst("s", "s-1", "10.0.1.5", nil, true, "t-nothex")}, nil, []string{"malformed-tags:warning"}},
		{"plain t tag ahead of go-micro's metadata", []Instance{inst("s", "s-1", "10.0.1.5", nil, true, "traefik.enable=true", registry.EncodeMetadata(map[string]string{"a": "b"})[0])},
			nil, []string{"tag-breaks-go-micro:error"}},
		{"plain e tag ahead of go-micro's endpoints", []Instance{inst("s", "s-1", "10.0.1.5", nil, true, "edge", registry.EncodeEndpoints([]registry.Endpoint{{Name: "A.B"}})[0])},
			nil, []string{"tag-breaks-go-micro:error"}},
		{"one-character tag e", []Instance{inst("s", "s-1", "10.0.1.5", nil, true, "e")}, nil, []string{"tag-breaks-go-micro:error"}},
		{"plain tags after go-micro's are harmless", []Instance{inst("s", "s-1", "10.0.1.5", nil, true, registry.EncodeMetadata(map[string]string{"a": "b"})[0], "traefik.enable=true", "primary")}, nil, nil},
		{"2016 double endpoints are fine", []Instance{inst("s", "s-1", "10.0.1.5", nil, true, `e={"name":"A.B"}`, registry.EncodeEndpoints([]registry.Endpoint{{Name: "A.B"}})[0])}, nil, nil},
		{"consul's own service is skipped", []Instance{inst("consul", "consul", "127.0.0.1", nil, false)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Lint(tt.instances, LintOptions{Networks: tt.nets})
			got := rules(rep)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings = %v, want %v\n%+v", got, tt.want, rep.Findings)
			}
			for _, f := range rep.Findings {
				if f.Message == "" || f.Hint == "" || f.Service == "" {
					t.Errorf("finding without message, hint or service: %+v", f)
				}
			}
		})
	}
}

func TestLintNotesSayWhatWasNotChecked(t *testing.T) {
	rep := Lint([]Instance{inst("s", "s-1", "10.0.1.5", nil, true), inst("s", "s-2", "web", nil, true)},
		LintOptions{NetworksUnknown: "the Docker Engine is not a swarm manager"})
	all := strings.Join(rep.Notes, "\n")
	for _, want := range []string{"2 instance(s) publish no TTL or interval", "1 instance(s) registered a hostname",
		"overlay networks unknown (the Docker Engine is not a swarm manager)", "deregister-lt-ttl was not applied"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
}

func TestLintMessagesNameTheNumbers(t *testing.T) {
	rep := Lint([]Instance{inst("s", "s-1", "10.0.1.5", timing("2s", "3s"), true)}, LintOptions{})
	if len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Message, "interval 3s >= TTL 2s") ||
		!strings.Contains(rep.Findings[0].Hint, "--register_interval 1 with --register_ttl 2") {
		t.Errorf("finding = %+v", rep.Findings)
	}
}

// FuzzInstanceFromConsul feeds what a registration controls (address,
// Meta values, tags) through the model and the lint: never a panic, and
// never a TTL or interval that is not positive.
func FuzzInstanceFromConsul(f *testing.F) {
	f.Add("10.0.1.5", "15s", "10s", registry.EncodeVersion("1.0"))
	f.Add("::ffff:127.0.0.1", "15", "x", "t-zz")
	f.Add("", "-1", "9223372036854775807", "e=")
	f.Add("fe80::1%eth0", "1e9h", "0.5s", `t={"a":1}`)
	f.Fuzz(func(t *testing.T, addr, ttl, iv, tag string) {
		meta := map[string]string{registry.MetaRegisterTTL: ttl, registry.MetaRegisterInterval: iv, MetaDeregisterAfter: ttl}
		in := inst("s", "s-1", addr, meta, true, tag)
		if in.TTLSource == FromMeta && in.TTL <= 0 || in.IntervalSource == FromMeta && in.Interval <= 0 {
			t.Fatalf("non-positive timing accepted: %+v", in.Timing)
		}
		if (in.TTLText == nil) != (in.TTL <= 0) {
			t.Fatalf("ttl text %v for ttl %s", in.TTLText, in.TTL)
		}
		nets := &Networks{Overlays: []Subnet{{"o", netip.MustParsePrefix("10.0.1.0/24")}}}
		for _, n := range []*Networks{nil, nets} {
			rep := Lint([]Instance{in, in}, LintOptions{Networks: n})
			for _, f := range rep.Findings {
				if f.Rule == "" || f.Message == "" {
					t.Fatalf("empty finding %+v", f)
				}
			}
		}
	})
}
