package health

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

func TestTimingOf(t *testing.T) {
	s := time.Second
	tests := []struct {
		name      string
		meta      map[string]string
		def       Defaults
		ttl, iv   time.Duration
		ttlSrc    Origin
		ivSrc     Origin
		wantWarns int
	}{
		{"go durations in meta", map[string]string{"micro_register_ttl": "15s", "micro_register_interval": "10s"}, Defaults{}, 15 * s, 10 * s, FromMeta, FromMeta, 0},
		{"whole seconds in meta", map[string]string{"micro_register_ttl": "90", "micro_register_interval": " 30 "}, Defaults{}, 90 * s, 30 * s, FromMeta, FromMeta, 0},
		{"nothing known", nil, Defaults{}, 0, 0, Unknown, Unknown, 0},
		{"operator fills the gaps", map[string]string{"micro_register_ttl": "1m"}, Defaults{TTL: 5 * s, Interval: 2 * s}, time.Minute, 2 * s, FromMeta, FromOperator, 0},
		{"malformed meta is not guessed", map[string]string{"micro_register_ttl": "fifteen", "micro_register_interval": "-3"}, Defaults{}, 0, 0, Unknown, Unknown, 2},
		{"malformed meta falls back to the operator", map[string]string{"micro_register_ttl": "0s"}, Defaults{TTL: 7 * s}, 7 * s, 0, FromOperator, Unknown, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns := TimingOf(tt.meta, tt.def)
			if got.TTL != tt.ttl || got.Interval != tt.iv || got.TTLSource != tt.ttlSrc || got.IntervalSource != tt.ivSrc {
				t.Errorf("TimingOf(%v, %+v) = %+v", tt.meta, tt.def, got)
			}
			if len(warns) != tt.wantWarns {
				t.Errorf("warnings = %q, want %d", warns, tt.wantWarns)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	tests := map[string]registry.Check{
		"serf":        {CheckID: "serfHealth"},
		"maintenance": {CheckID: "_service_maintenance:web-1"},
		"ttl":         {CheckID: "service:web-1", Type: "ttl"},
		"http":        {CheckID: "c", Type: "http"},
		"unknown":     {CheckID: "c"},
	}
	for want, c := range tests {
		if got := KindOf(c); got != want {
			t.Errorf("KindOf(%+v) = %s, want %s", c, got, want)
		}
	}
	nm := registry.Check{CheckID: "_node_maintenance"}
	if KindOf(nm) != "maintenance" {
		t.Errorf("node maintenance: %s", KindOf(nm))
	}
}

func check(node, id, svcID, status, typ string) registry.Check {
	return registry.Check{Node: node, CheckID: id, ServiceID: svcID, Status: status, Type: typ}
}

func TestBuildCountsNodeChecks(t *testing.T) {
	cat := &registry.Catalog{
		Nodes: []registry.Node{
			{Name: "n1", Address: "10.0.0.1", Checks: []registry.Check{check("n1", "serfHealth", "", "passing", "")}},
			{Name: "n2", Address: "10.0.0.2", Checks: []registry.Check{check("n2", "serfHealth", "", "critical", "")}},
		},
		Instances: []registry.ServiceInstance{
			{ID: "web-2", Service: "web", Node: "n2", NodeAddress: "10.0.0.2", Address: "10.0.1.2", Port: 80,
				Tags: []string{registry.EncodeVersion("1.0")}, Checks: []registry.Check{check("n2", "service:web-2", "web-2", "passing", "ttl")}},
			{ID: "web-1", Service: "web", Node: "n1", NodeAddress: "10.0.0.1", Port: 80,
				Tags: []string{registry.EncodeVersion("1.1"), "primary", "t-zz"}, Checks: []registry.Check{check("n1", "service:web-1", "web-1", "warning", "ttl")}},
			{ID: "db-1", Service: "db", Node: "n1", NodeAddress: "10.0.0.1", Port: 5432, Checks: []registry.Check{}},
		},
	}
	ins := Build(cat, Options{})
	var got []string
	for _, in := range ins {
		got = append(got, in.Service+"/"+in.ID+"="+in.Status)
	}
	want := []string{"db/db-1=passing", "web/web-1=warning", "web/web-2=critical"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("instances = %v, want %v (a node's critical serfHealth makes its instances critical)", got, want)
	}
	if ins[0].HasCheck || !ins[1].HasCheck {
		t.Errorf("HasCheck wrong: %v %v", ins[0].HasCheck, ins[1].HasCheck)
	}
	if ins[1].Address != "10.0.0.1" {
		t.Errorf("an instance with no address is dialled at its node's: %q", ins[1].Address)
	}
	if len(ins[1].Warnings) != 1 || !strings.Contains(ins[1].Warnings[0], "t-zz") {
		t.Errorf("malformed tag not warned about: %q", ins[1].Warnings)
	}
	sums := Summarize(ins)
	if len(sums) != 2 || sums[1].Name != "web" || sums[1].Instances != 2 || sums[1].Warning != 1 || sums[1].Critical != 1 ||
		!reflect.DeepEqual(sums[1].Versions, []string{"1.0", "1.1"}) || !reflect.DeepEqual(sums[1].Tags, []string{"primary"}) || sums[1].MalformedTags != 1 {
		t.Errorf("summaries = %+v", sums)
	}
	if only := Build(cat, Options{Services: []string{"db"}}); len(only) != 1 || only[0].Service != "db" {
		t.Errorf("service filter: %+v", only)
	}
	if tot := Total(ins); tot != (Counts{Instances: 3, Passing: 1, Warning: 1, Critical: 1}) {
		t.Errorf("total = %+v", tot)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"go.micro.srv.greeter", "go.micro.api.gateway", "consul", "billing"}
	tests := map[string]string{
		"greeter":               "go.micro.srv.greeter",
		"go.micro.srv.greeterr": "go.micro.srv.greeter",
		"go.micro.srv.greter":   "go.micro.srv.greeter",
		"Consul":                "consul",
		"biling":                "billing",
		"payments":              "",
		"":                      "",
	}
	for in, want := range tests {
		if got := Suggest(in, known); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
	err := CheckServices([]string{"billing", "greeter"}, known, false)
	if err == nil || err.Error() != "no service named greeter; did you mean go.micro.srv.greeter?" {
		t.Errorf("CheckServices: %v", err)
	}
	if err := CheckServices([]string{"payments"}, known, false); err == nil || err.Error() != "no service named payments" {
		t.Errorf("CheckServices without a suggestion: %v", err)
	}
}
