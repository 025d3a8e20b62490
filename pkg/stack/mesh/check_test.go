package mesh

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/registry"
)

// fakeEngine answers TaskList from a fixed list; the _up-to-date filter
// keeps the tasks named in current.
type fakeEngine struct {
	ServicesAPI
	services []swarm.Service
	tasks    []swarm.Task
	current  map[string]bool
	err      error
}

func (f *fakeEngine) ServiceList(context.Context, swarm.ServiceListOptions) ([]swarm.Service, error) {
	return f.services, f.err
}

func (f *fakeEngine) TaskList(_ context.Context, o swarm.TaskListOptions) ([]swarm.Task, error) {
	if f.err != nil {
		return nil, f.err
	}
	var out []swarm.Task
	for _, t := range f.tasks {
		if !o.Filters.ExactMatch("service", t.ServiceID) {
			continue
		}
		if o.Filters.Contains("_up-to-date") && !f.current[t.ID] {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// fakeConsul holds instances by service and records deregistrations.
type fakeConsul struct {
	ConsulAPI
	instances map[string][]registry.ServiceInstance
	err       error
	removed   []string
	removeErr error
}

func (f *fakeConsul) ServiceInstances(_ context.Context, name string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error) {
	return f.instances[name], nil, registry.ACLFiltering{}, f.err
}

func (f *fakeConsul) Catalog(context.Context) (*registry.Catalog, error) {
	if f.err != nil {
		return nil, f.err
	}
	var all []registry.ServiceInstance
	for _, ins := range f.instances {
		all = append(all, ins...)
	}
	return &registry.Catalog{Instances: all}, nil
}

func (f *fakeConsul) Deregister(_ context.Context, in registry.ServiceInstance, _ registry.DeregisterOptions) (registry.Removal, error) {
	if f.removeErr != nil {
		return registry.Removal{}, f.removeErr
	}
	f.removed = append(f.removed, in.ID)
	var keep []registry.ServiceInstance
	for _, x := range f.instances[in.Service] {
		if x.ID != in.ID {
			keep = append(keep, x)
		}
	}
	f.instances[in.Service] = keep
	return registry.Removal{Service: in.Service, Instance: in.ID, Via: "agent"}, nil
}

func swarmTask(id string, slot int, addr string, state swarm.TaskState, since time.Time) swarm.Task {
	desired := swarm.TaskStateRunning
	if state != swarm.TaskStateRunning {
		desired = swarm.TaskStateShutdown
	}
	return swarm.Task{ID: id, ServiceID: "svc1", Slot: slot, DesiredState: desired,
		Status: swarm.TaskStatus{State: state, Timestamp: since},
		NetworksAttachments: []swarm.NetworkAttachment{
			{Network: swarm.Network{Spec: swarm.NetworkSpec{Ingress: true}}, Addresses: []string{"10.255.0.9/16"}},
			{Addresses: []string{addr + "/24"}},
		}}
}

func regInstance(id, addr, status string, ttl string) registry.ServiceInstance {
	return registry.ServiceInstance{ID: id, Service: "go.micro.srv.greeter", Node: "n1", Address: addr, Port: 8080,
		Meta:   map[string]string{registry.MetaRegisterTTL: ttl},
		Checks: []registry.Check{{CheckID: "service:" + id, Status: status, ModifyIndex: 5}}}
}

func TestCheckerRemovesStaleAfterTTLThenConverges(t *testing.T) {
	now := t0
	eng := &fakeEngine{
		tasks: []swarm.Task{
			swarmTask("old1", 1, "10.0.1.4", swarm.TaskStateShutdown, t0),
			swarmTask("new1", 1, "10.0.1.5", swarm.TaskStateRunning, t0),
		},
		current: map[string]bool{"new1": true},
	}
	consul := &fakeConsul{instances: map[string][]registry.ServiceInstance{"go.micro.srv.greeter": {
		regInstance("greeter-old", "10.0.1.4", "passing", "15s"),
		regInstance("greeter-new", "10.0.1.5", "passing", "15s"),
	}}}
	c := NewChecker(eng, consul, CheckerOptions{Now: func() time.Time { return now }})
	svc := Service{Name: "demo_greeter", ID: "svc1", Consul: "go.micro.srv.greeter", Declared: true}

	steps := []struct {
		at      time.Duration
		want    Verdict
		removed []string
	}{
		{0, Waiting, nil},
		{10 * time.Second, Waiting, nil},
		// The old task stopped 15 s ago, one TTL: microctl removes it.
		{15 * time.Second, Waiting, []string{"greeter-old"}},
		{16 * time.Second, Converged, []string{"greeter-old"}},
	}
	// The catalog may still list it for a moment: not removed twice.
	consul.instances["go.micro.srv.greeter"] = append(consul.instances["go.micro.srv.greeter"], regInstance("greeter-old", "10.0.1.4", "passing", "15s"))
	defer func() {
		now = t0.Add(17 * time.Second)
		r, err := c.Check(context.Background(), svc)
		if err != nil || len(r.Removed) != 0 || !slices.Equal(consul.removed, []string{"greeter-old"}) {
			t.Errorf("second sighting: removed %v (all %v), err %v; want no second removal", r.Removed, consul.removed, err)
		}
	}()
	for i, s := range steps {
		now = t0.Add(s.at)
		r, err := c.Check(context.Background(), svc)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if r.Verdict != s.want {
			t.Fatalf("step %d: %s (%s), want %s", i, r.Verdict, r.Reason, s.want)
		}
		if !slices.Equal(consul.removed, s.removed) {
			t.Fatalf("step %d: removed %v, want %v", i, consul.removed, s.removed)
		}
	}
}

func TestCheckerReportsFailedRemoval(t *testing.T) {
	eng := &fakeEngine{tasks: []swarm.Task{swarmTask("old1", 1, "10.0.1.4", swarm.TaskStateShutdown, t0)}}
	consul := &fakeConsul{
		instances: map[string][]registry.ServiceInstance{"go.micro.srv.greeter": {regInstance("greeter-old", "10.0.1.4", "critical", "15s")}},
		removeErr: &registry.AgentUnreachableError{Node: "n1", Addr: "10.0.0.1:8500", Err: errors.New("refused")},
	}
	c := NewChecker(eng, consul, CheckerOptions{Now: func() time.Time { return t0.Add(time.Minute) }})
	r, err := c.Check(context.Background(), Service{ID: "svc1", Consul: "go.micro.srv.greeter"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Waiting || len(r.RemoveErrors) != 1 || len(r.Removed) != 0 {
		t.Fatalf("verdict %s, removed %v, errors %v; want waiting with one removal error", r.Verdict, r.Removed, r.RemoveErrors)
	}
	var ae *registry.AgentUnreachableError
	if !errors.As(r.RemoveErrors[0], &ae) {
		t.Errorf("removal error %v does not wrap the agent's", r.RemoveErrors[0])
	}
}

func TestCheckerConsulUnreachable(t *testing.T) {
	eng := &fakeEngine{}
	consul := &fakeConsul{err: &registry.UnreachableError{Addr: "127.0.0.1:1", Err: errors.New("connection refused")}}
	c := NewChecker(eng, consul, CheckerOptions{})
	_, err := c.Check(context.Background(), Service{ID: "svc1", Consul: "go.micro.srv.greeter"})
	if !Unreachable(err) {
		t.Fatalf("err = %v, want an unreachable Consul", err)
	}
}

func TestFromSwarm(t *testing.T) {
	task := swarmTask("t1", 2, "10.0.1.5", swarm.TaskStateRunning, t0)
	got := FromSwarm(task, true)
	if !got.Running || !got.Current || got.Slot != 2 || !slices.Equal(got.Addrs, []string{"10.0.1.5"}) || !got.Since.Equal(t0) {
		t.Errorf("FromSwarm = %+v", got)
	}
	// Desired shutdown while still running: on its way out, not serving.
	task.DesiredState = swarm.TaskStateShutdown
	if got := FromSwarm(task, true); got.Running || !got.Pending {
		t.Errorf("a task told to shut down, still running: running %v, pending %v; want not running, pending", got.Running, got.Pending)
	}
	for _, tc := range []struct {
		desired, state swarm.TaskState
		pending        bool
	}{
		{swarm.TaskStateRunning, swarm.TaskStatePreparing, true},
		{swarm.TaskStateRunning, swarm.TaskStateStarting, true},
		{swarm.TaskStateRunning, swarm.TaskStateRunning, false},
		{swarm.TaskStateShutdown, swarm.TaskStateShutdown, false},
		{swarm.TaskStateShutdown, swarm.TaskStateComplete, false},
		{swarm.TaskStateRunning, swarm.TaskStateFailed, false},
		{swarm.TaskStateShutdown, swarm.TaskStateStarting, false}, // never ran, told to stop: gone
	} {
		task := swarmTask("t1", 1, "10.0.1.5", tc.state, t0)
		task.DesiredState = tc.desired
		if got := FromSwarm(task, true).Pending; got != tc.pending {
			t.Errorf("desired %s, state %s: pending %v, want %v", tc.desired, tc.state, got, tc.pending)
		}
	}
}

func TestResolve(t *testing.T) {
	eng := &fakeEngine{tasks: []swarm.Task{swarmTask("t1", 1, "10.0.1.5", swarm.TaskStateRunning, t0)}}
	consul := &fakeConsul{instances: map[string][]registry.ServiceInstance{
		"go.micro.srv.greeter": {regInstance("g1", "10.0.1.5", "passing", "15s")},
		"other":                {regInstance("o1", "10.0.9.9", "passing", "15s")},
	}}
	tests := []struct {
		name         string
		labels       map[string]string
		consulErr    error
		wantName     string
		wantDeclared bool
		wantErr      bool
	}{
		{"declared by label", map[string]string{Label: "go.micro.srv.hello"}, nil, "go.micro.srv.hello", true, false},
		{"declared wins without asking Consul", map[string]string{Label: "x"}, errors.New("down"), "x", true, false},
		{"inferred from the tasks' addresses", nil, nil, "go.micro.srv.greeter", false, false},
		{"inference needs Consul", nil, &registry.UnreachableError{Addr: "a", Err: errors.New("refused")}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			consul.err = tt.consulErr
			svc, _, err := Resolve(context.Background(), eng, consul, "demo_greeter", "svc1", tt.labels)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if svc.Consul != tt.wantName || svc.Declared != tt.wantDeclared {
				t.Errorf("Resolve = %+v, want %s declared=%v", svc, tt.wantName, tt.wantDeclared)
			}
		})
	}
}
