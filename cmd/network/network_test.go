package network

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/golden"
	sw "github.com/microctl/microctl/pkg/swarm"
)

func TestCreateFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		spec  sw.NetworkSpec
		usage string
	}{
		{"defaults: attachable overlay", []string{"micro"}, sw.NetworkSpec{Name: "micro", Attachable: true}, ""},
		{"everything", []string{"edge", "--subnet", "10.30.0.0/16", "--gateway", "10.30.0.1", "--ip-range", "10.30.8.0/21",
			"--encrypted", "--internal", "--attachable=false", "--label", "team=payments"},
			sw.NetworkSpec{Name: "edge", Pools: []sw.IPAMPool{{Subnet: "10.30.0.0/16", Gateway: "10.30.0.1", IPRange: "10.30.8.0/21"}},
				Encrypted: true, Internal: true, Labels: map[string]string{"team": "payments"}}, ""},
		{"two subnets", []string{"n", "--subnet", "10.1.0.0/24", "--subnet", "fd00:1::/64"},
			sw.NetworkSpec{Name: "n", Attachable: true, Pools: []sw.IPAMPool{{Subnet: "10.1.0.0/24"}, {Subnet: "fd00:1::/64"}}}, ""},
		{"invalid CIDR", []string{"n", "--subnet", "10.1.0.1/24"}, sw.NetworkSpec{}, "did you mean 10.1.0.0/24"},
		{"not a CIDR", []string{"n", "--subnet", "banana"}, sw.NetworkSpec{}, "invalid CIDR"},
		{"gateway outside", []string{"n", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1"}, sw.NetworkSpec{}, "in none of the subnets"},
		{"bad label", []string{"n", "--label", "nokey"}, sw.NetworkSpec{}, "want KEY=VALUE"},
		{"bad name", []string{"-x-"}, sw.NetworkSpec{}, "unknown shorthand"},
		{"bad name 2", []string{"a b"}, sw.NetworkSpec{}, "invalid network name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := cmdtest.Parse(t, NewCmdCreate, tt.args...)
			if tt.usage != "" {
				if err == nil || !strings.Contains(err.Error(), tt.usage) {
					t.Fatalf("err = %v, want %q", err, tt.usage)
				}
				var ue *cmdutil.UsageError
				if !strings.Contains(tt.usage, "shorthand") && !errors.As(err, &ue) {
					t.Errorf("%T is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Spec, tt.spec) {
				t.Errorf("spec %+v, want %+v", o.Spec, tt.spec)
			}
		})
	}
}

func TestInspectRendering(t *testing.T) {
	n := sw.OverlayNetwork{Name: "micro", ID: "microidxxxxxxxxx", Driver: "overlay", Scope: "swarm",
		Subnets:    []sw.IPAMPool{{Subnet: "10.10.0.0/24", Gateway: "10.10.0.1"}, {Subnet: "10.11.0.0/16", IPRange: "10.11.8.0/21"}},
		Attachable: true, Encrypted: true, Labels: map[string]string{"b": "2", "a": "1"},
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Services:  []string{"api", "greeter"},
		Peers:     []sw.NetworkPeer{{Name: "node1", IP: "10.1.0.1"}, {Name: "node2", IP: "10.1.0.2"}}}
	var b bytes.Buffer
	if err := renderInspect(&b, n); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "inspect.txt", b.Bytes())
}

func TestServicesCell(t *testing.T) {
	for in, want := range map[string]string{"": "-", "a": "a", "a,b,c": "a,b,c", "a,b,c,d,e": "a,b,c,+2"} {
		var s []string
		if in != "" {
			s = strings.Split(in, ",")
		}
		if got := servicesCell(s); got != want {
			t.Errorf("servicesCell(%q) = %q, want %q", in, got, want)
		}
	}
}
