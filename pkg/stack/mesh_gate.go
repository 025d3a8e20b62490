package stack

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/registry"
	"github.com/microctl/microctl/pkg/stack/mesh"
)

// MeshOptions turn on the mesh gate: for a service that registers in
// Consul (declared with the deploy label microctl.consul.service, or
// inferred from where its tasks register), converged means serving in
// Consul too (see pkg/stack/mesh).
type MeshOptions struct {
	// Consul is the registry the services register in; nil: only the
	// services the file declares are gated, and each waits for Consul
	// until the timeout.
	Consul mesh.ConsulAPI
	// Off is --no-mesh: Swarm alone decides.
	Off bool
	// MinHealthy and HealthyDeadline override the defaults (0: from the
	// instances' TTL).
	MinHealthy, HealthyDeadline time.Duration
	// Deregister says how stale instances are removed through their
	// owning agent.
	Deregister registry.DeregisterOptions
}

// MeshPlan is what the plan knows of a mesh service.
type MeshPlan struct {
	Consul   string `json:"consul_service"`
	Declared bool   `json:"declared"`
	// MinHealthy and HealthyDeadline as the gate will apply them, in
	// seconds.
	MinHealthy      float64 `json:"min_healthy_s"`
	HealthyDeadline float64 `json:"healthy_deadline_s"`
	minHealthy      time.Duration
	deadline        time.Duration
}

// planMesh decides whether sp is a mesh service and, when it is, sets the
// update config the gate needs where the file leaves it open. It runs
// before the diff, so the plan shows (and applies) the effective config.
func (p *Plan) planMesh(ctx context.Context, api StackAPI, sp *ServicePlan, cur string) {
	o := p.opts.Mesh
	if o.Off {
		return
	}
	var svc mesh.Service
	var inf mesh.Inference
	var err error
	switch {
	case sp.spec.Labels[mesh.Label] != "":
		svc, inf, err = mesh.Resolve(ctx, api, o.Consul, sp.FullName, cur, sp.spec.Labels)
	case cur == "" || o.Consul == nil:
		return // nothing runs yet to infer from, or no Consul to ask
	default:
		svc, inf, err = mesh.Resolve(ctx, api, o.Consul, sp.FullName, cur, nil)
	}
	if err != nil {
		if !p.meshWarned {
			p.meshWarned = true
			p.Warnings = append(p.Warnings, fmt.Sprintf("mesh: %s; only services declared with the deploy label %s are gated on Consul",
				textutil.OneLine(err.Error()), mesh.Label))
		}
		return
	}
	if len(inf.Ambiguous) > 0 {
		p.Warnings = append(p.Warnings, fmt.Sprintf("service %s: %s", sp.FullName, inf))
	}
	if svc.Consul == "" {
		return
	}
	var ttl time.Duration
	if o.Consul != nil {
		if ins, nodes, _, err := o.Consul.ServiceInstances(ctx, svc.Consul); err == nil {
			ttl = mesh.TTL(mesh.FromRegistry(ins, nodes))
		}
	}
	minHealthy := mesh.EffectiveMinHealthy(o.MinHealthy, ttl)
	deadline := mesh.EffectiveHealthyDeadline(o.HealthyDeadline, minHealthy, ttl)
	uc, warns := mesh.GatedUpdate(sp.spec.UpdateConfig, deadline)
	sp.spec.UpdateConfig = &uc
	rc, rwarns := mesh.GatedRollback(sp.spec.RollbackConfig, uc)
	sp.spec.RollbackConfig = &rc
	warns = append(warns, rwarns...)
	for _, w := range warns {
		p.Warnings = append(p.Warnings, fmt.Sprintf("service %s (mesh service %s): %s", sp.FullName, svc.Consul, w))
	}
	sp.Mesh = &MeshPlan{Consul: svc.Consul, Declared: svc.Declared, minHealthy: minHealthy, deadline: deadline,
		MinHealthy: minHealthy.Seconds(), HealthyDeadline: deadline.Seconds()}
}

// meshGate is the watcher's Gate for a deploy's mesh services.
type meshGate struct {
	checker *mesh.Checker
	rep     Reporter
	warnf   func(string, ...any)

	mu   sync.Mutex
	svcs map[string]mesh.Service // by full name
}

func newMeshGate(eng mesh.EngineAPI, p *Plan, o MeshOptions, rep Reporter, warnf func(string, ...any)) *meshGate {
	if o.Off {
		return nil
	}
	g := &meshGate{rep: rep, warnf: warnf, svcs: map[string]mesh.Service{}}
	var consul mesh.ConsulAPI = o.Consul
	if consul == nil {
		consul = noConsul{}
	}
	g.checker = mesh.NewChecker(eng, consul, mesh.CheckerOptions{
		Options:    mesh.Options{MinHealthy: o.MinHealthy, HealthyDeadline: o.HealthyDeadline},
		Deregister: o.Deregister,
	})
	for _, sp := range p.Services {
		if sp.Mesh != nil {
			g.svcs[sp.FullName] = mesh.Service{Name: sp.FullName, ID: sp.ID, Consul: sp.Mesh.Consul, Declared: sp.Mesh.Declared}
		}
	}
	if len(g.svcs) == 0 {
		return nil
	}
	return g
}

// gated reports whether the plan made name a mesh service.
func (g *meshGate) gated(name string) bool {
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.svcs[name]
	return ok
}

// reset forgets what the gate saw of a service: after a rollback the
// previous version is judged afresh.
func (g *meshGate) reset(name, id string) {
	g.checker.Reset(mesh.Service{ID: id})
}

// Check implements Gate.
func (g *meshGate) Check(ctx context.Context, name, id string) GateState {
	g.mu.Lock()
	svc, ok := g.svcs[name]
	g.mu.Unlock()
	if !ok {
		return GateState{Off: true}
	}
	svc.ID = id
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := g.checker.Check(cctx, svc)
	if err != nil {
		if !svc.Declared {
			g.warnf("service %s: cannot check it in Consul (%s); it registers as %s by inference only, so Swarm alone decides for it",
				name, textutil.OneLine(err.Error()), svc.Consul)
			g.mu.Lock()
			delete(g.svcs, name)
			g.mu.Unlock()
			return GateState{Off: true}
		}
		return GateState{Message: fmt.Sprintf("waiting for Consul, where it registers as %s: %s", svc.Consul, textutil.OneLine(err.Error()))}
	}
	for _, rm := range r.Removed {
		g.rep.Event(fmt.Sprintf("deregistered stale instance %s of %s through its agent (%s)", rm.Instance, rm.Service, rm.Via))
	}
	for _, err := range r.RemoveErrors {
		g.warnf("%s", textutil.OneLine(err.Error()))
	}
	switch r.Verdict {
	case mesh.Converged:
		return GateState{Converged: true}
	case mesh.Failed:
		return GateState{Failed: true, Message: r.Reason}
	}
	return GateState{Message: r.Reason}
}

// noConsul stands in when no Consul client could be built: every read
// fails as an unreachable Consul.
type noConsul struct{ mesh.ConsulAPI }

func (noConsul) ServiceInstances(context.Context, string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error) {
	return nil, nil, registry.ACLFiltering{}, &registry.UnreachableError{Addr: "(no Consul configured)", Err: fmt.Errorf("no Consul client")}
}
