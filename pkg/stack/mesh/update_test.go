package mesh

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

func TestGatedUpdate(t *testing.T) {
	const deadline = 30 * time.Second
	tests := []struct {
		name  string
		file  *swarm.UpdateConfig
		want  swarm.UpdateConfig
		warns []string
	}{
		{"left open: one at a time, start-first, a delay of the deadline", nil,
			swarm.UpdateConfig{Parallelism: 1, Order: "start-first", Delay: deadline, Monitor: deadline, FailureAction: "pause"}, nil},
		{"the demo's greeter: its own settings kept, the delay filled",
			&swarm.UpdateConfig{Parallelism: 1, Order: "start-first", Monitor: 3 * time.Second, FailureAction: "rollback"},
			swarm.UpdateConfig{Parallelism: 1, Order: "start-first", Delay: deadline, Monitor: 3 * time.Second, FailureAction: "rollback"}, nil},
		{"all at once", &swarm.UpdateConfig{Parallelism: 0, Order: "start-first", Delay: time.Minute},
			swarm.UpdateConfig{Parallelism: 0, Order: "start-first", Delay: time.Minute, Monitor: deadline, FailureAction: "pause"},
			[]string{"parallelism 0 replaces every task at once"}},
		{"two at a time, stop-first, short delay", &swarm.UpdateConfig{Parallelism: 2, Order: "stop-first", Delay: 5 * time.Second},
			swarm.UpdateConfig{Parallelism: 2, Order: "stop-first", Delay: 5 * time.Second, Monitor: deadline, FailureAction: "pause"},
			[]string{"parallelism 2", "stop-first", "delay 5s is shorter than the healthy deadline 30s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns := GatedUpdate(tt.file, deadline)
			if got != tt.want {
				t.Errorf("GatedUpdate = %+v, want %+v", got, tt.want)
			}
			if len(warns) != len(tt.warns) {
				t.Fatalf("warnings %q, want %d", warns, len(tt.warns))
			}
			for i, w := range tt.warns {
				if !strings.Contains(warns[i], w) {
					t.Errorf("warning %q, want it to contain %q", warns[i], w)
				}
			}
		})
	}
}

func TestDescribeUpdate(t *testing.T) {
	if got := DescribeUpdate(nil); !strings.Contains(got, "Swarm's defaults") {
		t.Errorf("DescribeUpdate(nil) = %q", got)
	}
	u := swarm.UpdateConfig{Parallelism: 1, Order: "start-first", Delay: 30 * time.Second, Monitor: 30 * time.Second, FailureAction: "pause"}
	if got, want := DescribeUpdate(&u), "parallelism 1, start-first, delay 30s, monitor 30s, on failure pause"; got != want {
		t.Errorf("DescribeUpdate = %q, want %q", got, want)
	}
}

func TestGatedRollback(t *testing.T) {
	startFirst := swarm.UpdateConfig{Parallelism: 1, Order: "start-first"}
	stopFirst := swarm.UpdateConfig{Parallelism: 1, Order: "stop-first"}
	tests := []struct {
		name   string
		file   *swarm.UpdateConfig
		update swarm.UpdateConfig
		want   swarm.UpdateConfig
		warns  int
	}{
		{"open: the update's order", nil, startFirst,
			swarm.UpdateConfig{Parallelism: 1, Order: "start-first", FailureAction: "pause"}, 0},
		// The demo's greeter: parallelism 0 kept, start-first added.
		{"the file's parallelism, its open order from the update", &swarm.UpdateConfig{Parallelism: 0, Monitor: 3 * time.Second}, startFirst,
			swarm.UpdateConfig{Parallelism: 0, Monitor: 3 * time.Second, Order: "start-first", FailureAction: "pause"}, 0},
		// The demo's gateway: a host-mode port, updated stop-first.
		{"a service updated stop-first rolls back stop-first", nil, stopFirst,
			swarm.UpdateConfig{Parallelism: 1, Order: "stop-first", FailureAction: "pause"}, 0},
		{"stop-first written against a start-first update: kept, warned", &swarm.UpdateConfig{Order: "stop-first", FailureAction: "continue"}, startFirst,
			swarm.UpdateConfig{Order: "stop-first", FailureAction: "continue"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warns := GatedRollback(tt.file, tt.update)
			if got != tt.want {
				t.Errorf("GatedRollback = %+v, want %+v", got, tt.want)
			}
			if len(warns) != tt.warns {
				t.Errorf("warnings %q, want %d", warns, tt.warns)
			}
		})
	}
}
