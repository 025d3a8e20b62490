package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/microctl/microctl/pkg/registry"
)

// fakeDocker embeds the interface (docker/cli's fakeClient style) and
// models a two-node swarm where draining n1 moves its one task to n2.
type fakeDocker struct {
	DockerAPI
	w *world
}

type fakeConsul struct{ w *world }

// world is the shared state both fakes read and change, with a log of
// every change in order.
type world struct {
	mu      sync.Mutex
	log     []string
	avail   map[string]swarm.NodeAvailability
	maint   map[string]bool
	reads   int // catalog reads since maintenance was enabled
	moved   bool
	movedAt int // catalog reads after the move before the new instance passes
	// neverMove: the swarm never reschedules (for the timeout test).
	neverMove bool
	onDrain   func()
	// unroutedSeen: a catalog read returned the instance not passing
	// before the drain.
	unroutedSeen bool
}

func newWorld() *world {
	return &world{avail: map[string]swarm.NodeAvailability{"n1": "active", "n2": "active"}, maint: map[string]bool{}}
}

func (w *world) record(s string) { w.log = append(w.log, s) }

func (f fakeDocker) Info(context.Context) (system.Info, error) {
	return system.Info{Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true, NodeID: "n2"}}, nil
}
func (f fakeDocker) DaemonHost() string { return "fake://" }

func (f fakeDocker) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	var out []swarm.Node
	for _, id := range []string{"n1", "n2"} {
		out = append(out, swarm.Node{ID: id, Meta: swarm.Meta{Version: swarm.Version{Index: 7}},
			Spec:        swarm.NodeSpec{Availability: f.w.avail[id], Role: swarm.NodeRoleManager},
			Description: swarm.NodeDescription{Hostname: "host-" + id},
			Status:      swarm.NodeStatus{State: swarm.NodeStateReady}})
	}
	return out, nil
}

func (f fakeDocker) NodeUpdate(_ context.Context, id string, _ swarm.Version, spec swarm.NodeSpec) error {
	f.w.mu.Lock()
	f.w.avail[id] = spec.Availability
	f.w.record(fmt.Sprintf("node %s %s", id, spec.Availability))
	if spec.Availability == swarm.NodeAvailabilityDrain {
		if !f.w.unroutedSeen {
			f.w.record("ERROR: drained before the instance was seen out of the passing set")
		}
		if !f.w.neverMove {
			f.w.moved = true
		}
	}
	cb := f.w.onDrain
	f.w.mu.Unlock()
	if spec.Availability == swarm.NodeAvailabilityDrain && cb != nil {
		cb()
	}
	return nil
}

func task(id, node, ip string, state swarm.TaskState) swarm.Task {
	return swarm.Task{ID: id, ServiceID: "s1", NodeID: node, DesiredState: swarm.TaskStateRunning,
		Status:              swarm.TaskStatus{State: state},
		NetworksAttachments: []swarm.NetworkAttachment{{Addresses: []string{ip + "/24"}}}}
}

func (f fakeDocker) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if f.w.moved {
		return []swarm.Task{task("t2", "n2", "10.0.0.6", swarm.TaskStateRunning)}, nil
	}
	return []swarm.Task{task("t1", "n1", "10.0.0.5", swarm.TaskStateRunning)}, nil
}

func (f fakeDocker) ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error) {
	one := uint64(1)
	return []swarm.Service{{ID: "s1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "demo_greeter"},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}}}}, nil
}

func (f fakeConsul) Catalog(context.Context) (*registry.Catalog, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	cat := &registry.Catalog{Nodes: []registry.Node{{Name: "agent1", Address: "10.1.0.1",
		Checks: []registry.Check{{Node: "agent1", CheckID: "serfHealth", Status: "passing"}}}}}
	inst := func(id, ip string, checks ...registry.Check) registry.ServiceInstance {
		return registry.ServiceInstance{ID: id, Service: "greeter", Node: "agent1", Address: ip, Checks: checks}
	}
	ttl := func(id, status string) registry.Check {
		return registry.Check{Node: "agent1", CheckID: "service:" + id, ServiceID: id, Status: status, Type: "ttl"}
	}
	if !f.w.moved {
		checks := []registry.Check{ttl("greeter-1", "passing")}
		if f.w.maint["greeter-1"] {
			f.w.reads++
			// Maintenance shows in the catalog one read later, as a
			// change reaches the servers after the agent took it.
			if f.w.reads > 1 {
				checks = append(checks, registry.Check{Node: "agent1", CheckID: "_service_maintenance:greeter-1", ServiceID: "greeter-1", Status: "critical"})
				f.w.unroutedSeen = true
			}
		}
		cat.Instances = append(cat.Instances, inst("greeter-1", "10.0.0.5", checks...))
		return cat, nil
	}
	f.w.movedAt++
	status := "critical" // a new go-micro instance starts critical until its first heartbeat
	if f.w.movedAt > 2 {
		status = "passing"
	}
	cat.Instances = append(cat.Instances, inst("greeter-2", "10.0.0.6", ttl("greeter-2", status)))
	return cat, nil
}

func (f fakeConsul) SetMaintenance(_ context.Context, agentNode, agentAddr, id string, enable bool, _ string) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	if agentNode != "agent1" || agentAddr != "10.1.0.1" {
		return fmt.Errorf("maintenance sent to %s (%s), not the owning agent", agentNode, agentAddr)
	}
	if !enable && f.w.moved && id == "greeter-1" {
		f.w.record("maintenance off " + id + " (gone)")
		return ErrInstanceGone
	}
	f.w.maint[id] = enable
	f.w.record(fmt.Sprintf("maintenance %s %v", id, enable))
	return nil
}

func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func TestDrainOrder(t *testing.T) {
	w := newWorld()
	res, err := Drain(context.Background(), fakeDocker{w: w}, fakeConsul{w: w}, "host-n1", DrainOptions{Sleep: noSleep})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"maintenance greeter-1 true", "node n1 drain"}
	if !slices.Equal(w.log, want) {
		t.Errorf("changes %q, want %q", w.log, want)
	}
	var steps []string
	for _, s := range res.Steps {
		steps = append(steps, s.Name)
	}
	if !slices.Equal(steps, []string{StepMaintenance, StepUnrouted, StepDrain, StepMoved}) {
		t.Errorf("steps %v", steps)
	}
	if w.movedAt < 3 {
		t.Errorf("the drain ended before the new instance passed (%d reads after the move)", w.movedAt)
	}
	if !slices.Equal(res.Instances, []string{"greeter-1"}) || !slices.Equal(res.Services, []string{"demo_greeter"}) || res.Undone {
		t.Errorf("result %+v", res)
	}
}

func TestDrainUndoneOnInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name string
		// interrupt after the swarm drain (the worst moment: both sides
		// changed) or with the tasks never moving (timeout).
		cancelAtDrain bool
		neverMove     bool
		wantLog       []string
	}{
		{"ctrl-c after the swarm drain", true, false,
			[]string{"maintenance greeter-1 true", "node n1 drain", "node n1 active", "maintenance off greeter-1 (gone)"}},
		{"timeout waiting for the tasks", false, true,
			[]string{"maintenance greeter-1 true", "node n1 drain", "node n1 active", "maintenance greeter-1 false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.neverMove = tc.neverMove
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAtDrain {
				w.onDrain = cancel
			}
			opts := DrainOptions{Sleep: noSleep}
			if tc.neverMove {
				opts.Timeout = 50 * time.Millisecond
				opts.Sleep = func(ctx context.Context, _ time.Duration) error {
					w.mu.Lock()
					drained := w.avail["n1"] == swarm.NodeAvailabilityDrain
					w.mu.Unlock()
					if !drained {
						return nil
					}
					<-ctx.Done() // the tasks never move: wait out the timeout
					return ctx.Err()
				}
			}
			res, err := Drain(ctx, fakeDocker{w: w}, fakeConsul{w: w}, "n1", opts)
			var te *TimeoutError
			switch {
			case tc.cancelAtDrain && !errors.Is(err, context.Canceled):
				t.Errorf("err %v, want context.Canceled", err)
			case tc.neverMove && !errors.As(err, &te):
				t.Errorf("err %v, want a TimeoutError", err)
			case tc.neverMove && te.Step != StepMoved:
				t.Errorf("timed out at %s, want %s", te.Step, StepMoved)
			}
			if !slices.Equal(w.log, tc.wantLog) {
				t.Errorf("changes %q, want %q", w.log, tc.wantLog)
			}
			if !res.Undone || len(res.UndoErrors) > 0 {
				t.Errorf("undone %v, errors %v", res.Undone, res.UndoErrors)
			}
		})
	}
}

func TestDrainRefused(t *testing.T) {
	w := newWorld()
	w.avail["n2"] = swarm.NodeAvailabilityDrain
	_, err := Drain(context.Background(), fakeDocker{w: w}, fakeConsul{w: w}, "n1", DrainOptions{Sleep: noSleep})
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "no other node") {
		t.Fatalf("err %v", err)
	}
	if len(w.log) > 0 {
		t.Errorf("a refused drain changed %v", w.log)
	}
	var nf *NotFoundError
	if _, err := Drain(context.Background(), fakeDocker{w: w}, fakeConsul{w: w}, "nope", DrainOptions{}); !errors.As(err, &nf) {
		t.Errorf("unknown node: %v", err)
	}
}

func TestActivate(t *testing.T) {
	w := newWorld()
	w.avail["n1"] = swarm.NodeAvailabilityDrain
	w.maint["greeter-1"] = true
	w.reads = 5
	res, err := Activate(context.Background(), fakeDocker{w: w}, fakeConsul{w: w}, "n1", DrainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"node n1 active", "maintenance greeter-1 false"}
	if !slices.Equal(w.log, want) || !slices.Equal(res.Instances, []string{"greeter-1"}) {
		t.Errorf("changes %q (want %q), result %+v", w.log, want, res)
	}
}
