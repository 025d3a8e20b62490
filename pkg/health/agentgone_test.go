package health

import (
	"testing"

	"github.com/microctl/microctl/pkg/registry"
)

func TestAgentGone(t *testing.T) {
	chk := func(scope, id, status string) CheckState {
		return CheckState{Check: registry.Check{CheckID: id, Status: status}, Scope: scope}
	}
	tests := []struct {
		name   string
		checks []CheckState
		want   bool
	}{
		{"no checks", nil, false},
		{"serfHealth passing", []CheckState{chk("node", "serfHealth", registry.StatusPassing)}, false},
		{"serfHealth critical", []CheckState{chk("service", "service:x", registry.StatusPassing), chk("node", "serfHealth", registry.StatusCritical)}, true},
		{"a service check named serfHealth", []CheckState{chk("service", "serfHealth", registry.StatusCritical)}, false},
		{"node maintenance", []CheckState{chk("node", "_node_maintenance", registry.StatusCritical)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Instance{Checks: tt.checks}).AgentGone(); got != tt.want {
				t.Errorf("AgentGone = %v, want %v", got, tt.want)
			}
		})
	}
}
