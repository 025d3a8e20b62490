package swarm

import (
	"context"
	"testing"

	"github.com/docker/docker/api/types/network"

	"github.com/microctl/microctl/pkg/doctor"
)

func TestNetworkResultOf(t *testing.T) {
	tests := []struct {
		name   string
		same   []network.Inspect
		status doctor.Status
		detail string
	}{
		{"missing", nil, doctor.Warn, "overlay network micro is missing"},
		{"present", []network.Inspect{overlay("micro", "10.10.0.0/24", true, true)}, doctor.OK,
			"overlay network micro present (overlay, 10.10.0.0/24, attachable, encrypted)"},
		{"not attachable", []network.Inspect{overlay("micro", "10.10.0.0/24", false, false)}, doctor.Warn,
			"overlay network micro present (overlay, 10.10.0.0/24)"},
		{"a local bridge", []network.Inspect{{Name: "micro", Driver: "bridge", Scope: "local"}}, doctor.Fail,
			"network micro is a bridge network (scope local), not a swarm overlay"},
		{"two", []network.Inspect{overlay("micro", "", true, false), {Name: "micro", Driver: "bridge"}}, doctor.Fail, "2 networks are named micro"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NetworkResultOf("micro", tt.same)
			if r.Check != NetworkCheck || r.Status != tt.status || r.Detail != tt.detail {
				t.Errorf("got %+v, want %s %q", r, tt.status, tt.detail)
			}
			if r.Status != doctor.OK && r.Hint == "" {
				t.Error("no hint")
			}
		})
	}
}

func TestNetworkProbe(t *testing.T) {
	f := newFake().asManager()
	f.nets = append(f.nets, overlay("micro", "10.10.0.0/24", true, false))
	if r := NetworkProbe(f, "micro")(context.Background()); len(r) != 1 || r[0].Status != doctor.OK {
		t.Errorf("manager with micro: %+v", r)
	}
	if r := NetworkProbe(newFake(), "micro")(context.Background()); len(r) != 1 || r[0].Status != doctor.Skip {
		t.Errorf("no swarm: %+v", r)
	}
}
