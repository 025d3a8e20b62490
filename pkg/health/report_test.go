package health

import (
	"slices"
	"testing"

	"github.com/microctl/microctl/pkg/registry"
)

func TestNewReport(t *testing.T) {
	chk := func(status string) CheckState {
		return CheckState{Check: registry.Check{CheckID: "c-" + status, Status: status}, Scope: "service"}
	}
	ins := []Instance{
		{Service: "a", ID: "a-1", Status: registry.StatusPassing, Checks: []CheckState{chk(registry.StatusPassing)}},
		{Service: "a", ID: "a-2", Status: registry.StatusWarning, Checks: []CheckState{chk(registry.StatusPassing), chk(registry.StatusWarning)}},
		{Service: "b", ID: "b-1", Status: registry.StatusCritical, Checks: []CheckState{chk(registry.StatusCritical)}},
		{Service: "c", ID: "c-1", Status: registry.StatusPassing}, // no check: Consul says passing
	}
	tests := []struct {
		state, failOn string
		shown         []string
		failing       int
	}{
		{"any", registry.StatusCritical, []string{"a-1", "a-2", "b-1", "c-1"}, 1},
		{"any", registry.StatusWarning, []string{"a-1", "a-2", "b-1", "c-1"}, 2},
		{"any", "never", []string{"a-1", "a-2", "b-1", "c-1"}, 0},
		{registry.StatusPassing, registry.StatusCritical, []string{"a-1", "a-2", "c-1"}, 1},
		{registry.StatusWarning, registry.StatusCritical, []string{"a-2"}, 1},
		{registry.StatusCritical, "never", []string{"b-1"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.state+"/"+tt.failOn, func(t *testing.T) {
			rep := NewReport(ins, ReportOptions{State: tt.state, FailOn: tt.failOn})
			var shown []string
			for _, in := range rep.Instances {
				shown = append(shown, in.ID)
				if tt.state != "any" {
					for _, ch := range in.Checks {
						if ch.Status != tt.state {
							t.Errorf("%s shows a %s check under --state %s", in.ID, ch.Status, tt.state)
						}
					}
				}
			}
			if !slices.Equal(shown, tt.shown) {
				t.Errorf("shown %v, want %v", shown, tt.shown)
			}
			if rep.Failing != tt.failing || rep.Unhealthy != (tt.failing > 0) {
				t.Errorf("failing %d unhealthy %v, want %d", rep.Failing, rep.Unhealthy, tt.failing)
			}
			// The summary counts everything read, whatever is shown.
			if rep.Summary.Instances != 4 || rep.Summary.Services != 3 || rep.Summary.Critical != 1 {
				t.Errorf("summary %+v", rep.Summary)
			}
		})
	}
}
