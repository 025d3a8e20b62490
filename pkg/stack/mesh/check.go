package mesh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/registry"
)

// EngineAPI is what the gate reads from the engine.
type EngineAPI interface {
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
}

// ConsulAPI is what the gate reads from and does to Consul;
// *registry.Client implements it.
type ConsulAPI interface {
	ServiceInstances(ctx context.Context, service string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error)
	Catalog(ctx context.Context) (*registry.Catalog, error)
	Deregister(ctx context.Context, inst registry.ServiceInstance, o registry.DeregisterOptions) (registry.Removal, error)
}

// Service is one Swarm service as the gate knows it.
type Service struct {
	// Name is the Swarm service name (STACK_SERVICE), ID its ID.
	Name, ID string
	// Consul is the Consul name; Declared is true when the compose file
	// declared it (Label), false when it was inferred.
	Consul   string
	Declared bool
}

// CheckerOptions configure a Checker; zero values take the defaults.
type CheckerOptions struct {
	Options
	// Deregister holds how stale instances are removed through their
	// owning agent (the dialer for other nodes' agents, their port).
	Deregister registry.DeregisterOptions
	// Now is the clock (tests).
	Now func() time.Time
}

// Checker gates many services: one Gate each, observations read from the
// engine and Consul, stale instances removed as their gate says.
type Checker struct {
	eng    EngineAPI
	consul ConsulAPI
	o      CheckerOptions
	gates  map[string]*Gate
	// removed remembers deregistrations: the catalog may list an
	// instance for a moment after its agent dropped it, and it is not
	// removed (nor reported) twice.
	removed map[string]time.Time
}

// NewChecker returns a checker reading from eng and consul.
func NewChecker(eng EngineAPI, consul ConsulAPI, o CheckerOptions) *Checker {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Checker{eng: eng, consul: consul, o: o, gates: map[string]*Gate{}, removed: map[string]time.Time{}}
}

// Result is one check of one service.
type Result struct {
	Decision
	// Removed are the stale instances microctl deregistered in this check.
	Removed []registry.Removal
	// RemoveErrors are deregistrations that failed; the instances stay
	// stale and the gate keeps waiting for them.
	RemoveErrors []error
}

// Reset forgets a service's history: after a rollback the previous
// version is judged afresh by the same definition.
func (c *Checker) Reset(svc Service) { delete(c.gates, svc.ID) }

// Check observes svc once, decides, and deregisters the stale instances
// the gate names. An error means one half could not be read (a
// *registry.UnreachableError when Consul does not answer): nothing was
// decided.
func (c *Checker) Check(ctx context.Context, svc Service) (Result, error) {
	ob, raw, err := c.observe(ctx, svc)
	if err != nil {
		return Result{}, err
	}
	g := c.gates[svc.ID]
	if g == nil {
		o := c.o.Options
		o.Service = svc.Consul
		g = New(o)
		c.gates[svc.ID] = g
	}
	r := Result{Decision: g.Observe(ob)}
	for _, in := range r.Deregister {
		if at, ok := c.removed[in.ID]; ok && c.o.Now().Sub(at) < 30*time.Second {
			continue
		}
		rem, err := c.consul.Deregister(ctx, raw[in.ID], c.o.Deregister)
		if err != nil {
			r.RemoveErrors = append(r.RemoveErrors, fmt.Errorf("deregister stale instance %s of %s: %w", in.ID, svc.Consul, err))
			continue
		}
		c.removed[in.ID] = c.o.Now()
		r.Removed = append(r.Removed, rem)
	}
	return r, nil
}

// observe reads the service's tasks (all the engine remembers, and which
// of them run the current spec) and its Consul instances.
func (c *Checker) observe(ctx context.Context, svc Service) (Observation, map[string]registry.ServiceInstance, error) {
	tasks, err := Tasks(ctx, c.eng, svc.ID)
	if err != nil {
		return Observation{}, nil, err
	}
	ins, nodes, _, err := c.consul.ServiceInstances(ctx, svc.Consul)
	if err != nil {
		return Observation{}, nil, fmt.Errorf("instances of %s in Consul: %w", svc.Consul, err)
	}
	raw := make(map[string]registry.ServiceInstance, len(ins))
	for _, in := range ins {
		raw[in.ID] = in
	}
	return Observation{At: c.o.Now(), Tasks: tasks, Instances: FromRegistry(ins, nodes)}, raw, nil
}

// Tasks reads a service's tasks as the gate sees them: every task the
// engine remembers (the history tells a stale instance from a foreign
// one), marked Current when it runs the service's current spec.
func Tasks(ctx context.Context, eng EngineAPI, serviceID string) ([]Task, error) {
	all, err := eng.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
	if err != nil {
		return nil, fmt.Errorf("tasks of service %s: %w", serviceID, err)
	}
	cur, err := eng.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", serviceID), filters.Arg("_up-to-date", "true"))})
	if err != nil {
		return nil, fmt.Errorf("tasks of service %s: %w", serviceID, err)
	}
	current := map[string]bool{}
	for _, t := range cur {
		current[t.ID] = true
	}
	out := make([]Task, 0, len(all))
	for _, t := range all {
		out = append(out, FromSwarm(t, current[t.ID]))
	}
	return out, nil
}

// FromSwarm is the gate's view of one Swarm task.
func FromSwarm(t swarm.Task, current bool) Task {
	mt := Task{ID: t.ID, Slot: t.Slot, Current: current, Since: t.Status.Timestamp,
		Running: t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning}
	switch {
	case t.DesiredState == swarm.TaskStateRunning && preRunning(t.Status.State):
		mt.Pending = true // coming up
	case t.Status.State == swarm.TaskStateRunning && t.DesiredState != swarm.TaskStateRunning:
		mt.Pending = true // told to stop, still running
	}
	for _, na := range t.NetworksAttachments {
		// The ingress network's address is no address a service registers.
		if na.Network.Spec.Ingress {
			continue
		}
		for _, a := range na.Addresses {
			if ip, _, err := net.ParseCIDR(a); err == nil {
				mt.Addrs = append(mt.Addrs, ip.String())
			} else if ip := net.ParseIP(a); ip != nil {
				mt.Addrs = append(mt.Addrs, ip.String())
			}
		}
	}
	// A global service's slot is 0; the node tells its tasks apart.
	if mt.Slot == 0 && t.NodeID != "" {
		mt.Slot = -1
	}
	return mt
}

// preRunning reports whether a task in state s has not run yet (Swarm's
// states before running, in order).
func preRunning(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending, swarm.TaskStateAssigned,
		swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting:
		return true
	}
	return false
}

// Resolve decides whether svc is a mesh service: the label's name when the
// file declared one, else the one Consul service its running tasks'
// addresses are registered as. A nil error with an empty Consul name means
// not a mesh service; inf says what was found, for a warning.
func Resolve(ctx context.Context, eng EngineAPI, consul ConsulAPI, name, id string, labels map[string]string) (Service, Inference, error) {
	svc := Service{Name: name, ID: id}
	if v := strings.TrimSpace(labels[Label]); v != "" {
		svc.Consul, svc.Declared = v, true
		return svc, Inference{Service: v}, nil
	}
	tasks, err := Tasks(ctx, eng, id)
	if err != nil {
		return svc, Inference{}, err
	}
	var addrs []string
	for _, t := range tasks {
		if t.Running {
			addrs = append(addrs, t.Addrs...)
		}
	}
	if len(addrs) == 0 {
		return svc, Inference{}, nil
	}
	cat, err := consul.Catalog(ctx)
	if err != nil {
		return svc, Inference{}, err
	}
	inf := Infer(addrs, cat.Instances)
	svc.Consul = inf.Service
	return svc, inf, nil
}

// Unreachable reports whether err means Consul did not answer.
func Unreachable(err error) bool {
	var ue *registry.UnreachableError
	return errors.As(err, &ue)
}
