package stack

import (
	"context"
	"errors"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/stack/mesh"
)

// LabelCanaryOf marks a canary service with the service it tries a new
// version of.
const LabelCanaryOf = "microctl.canary.of"

// CanaryOptions tune RunCanary.
type CanaryOptions struct {
	// Replicas is how many tasks of the new spec run next to the old ones.
	Replicas uint64
	// Check, when set, runs once the canary has passed for min-healthy;
	// an error aborts (e.g. a bench with limits through the gateway).
	Check func(ctx context.Context) error
	// Timeout bounds the whole canary (default 5m).
	Timeout  time.Duration
	Mesh     MeshOptions
	Reporter Reporter
	// Interval between gate checks (default 1s).
	Interval time.Duration
}

// CanaryResult says how the canary ended.
type CanaryResult struct {
	Passed bool `json:"passed"`
	// Reason says why it was aborted.
	Reason string `json:"reason,omitempty"`
	// Services are the canary services that ran (and were removed).
	Services []string `json:"services"`
}

// ErrNoCanaryTarget means the plan updates no mesh service: a canary
// needs one (it shares the Consul name so that real traffic reaches it).
var ErrNoCanaryTarget = errors.New("--canary needs a mesh service the plan updates (a service registered in Consul, declared or inferred)")

// RunCanary starts, for every mesh service the plan updates, a canary
// service of Replicas tasks of the new spec next to the old version
// (same networks and Consul name, so clients send it a share of real
// traffic, no published ports), waits until the gate calls it serving
// (registered and passing for min-healthy), runs the check, and removes
// it. The old version is not touched: the caller promotes (deploys the
// plan) when the canary passed, and stops otherwise.
func RunCanary(ctx context.Context, api StackAPI, p *Plan, o CanaryOptions) (*CanaryResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Reporter == nil {
		o.Reporter = nopReporter{}
	}
	var targets []ServicePlan
	for _, sp := range p.Services {
		if sp.Action == ActionUpdate && sp.Mesh != nil {
			targets = append(targets, sp)
		}
	}
	if len(targets) == 0 {
		return nil, ErrNoCanaryTarget
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	res := &CanaryResult{}
	consul := o.Mesh.Consul
	if consul == nil {
		consul = noConsul{}
	}
	checker := mesh.NewChecker(api, consul, mesh.CheckerOptions{
		Options:    mesh.Options{MinHealthy: o.Mesh.MinHealthy, HealthyDeadline: o.Mesh.HealthyDeadline},
		Deregister: o.Mesh.Deregister,
	})
	type canary struct {
		name, id string
		svc      mesh.Service
	}
	var started []canary
	defer func() {
		// Always removed, whatever happened: the canary is a trial.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		var ids []string
		for _, c := range started {
			if err := api.ServiceRemove(rctx, c.id); err != nil && !cerrdefs.IsNotFound(err) {
				o.Reporter.Event(fmt.Sprintf("warning: could not remove canary %s: %s", c.name, textutil.OneLine(err.Error())))
				continue
			}
			ids = append(ids, c.id)
			o.Reporter.Event("removed canary " + c.name)
		}
		_ = waitTasksGone(rctx, api, p.Stack, ids, nil, func(string) {})
	}()
	for _, sp := range targets {
		spec := deepCopySpec(sp.spec)
		if spec.Mode.Replicated == nil {
			return nil, fmt.Errorf("service %s: a canary needs a replicated service", sp.FullName)
		}
		name := sp.FullName + "-canary"
		spec.Name = name
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[LabelCanaryOf] = sp.FullName
		n := o.Replicas
		spec.Mode.Replicated.Replicas = &n
		// Published ports belong to the service; a canary is reached
		// through the registry, as the old version's tasks are.
		if spec.EndpointSpec != nil {
			spec.EndpointSpec.Ports = nil
		}
		resp, err := api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("create canary %s: %w", name, err)
		}
		started = append(started, canary{name: name, id: resp.ID,
			svc: mesh.Service{Name: name, ID: resp.ID, Consul: sp.Mesh.Consul, Declared: true}})
		res.Services = append(res.Services, name)
		o.Reporter.Event(fmt.Sprintf("started canary %s: %d task(s) of the new spec of %s, registering as %s", name, n, sp.FullName, sp.Mesh.Consul))
	}
	// The canary serves once its own tasks all run and the gate says they
	// passed for min-healthy. Its gate sees only the canary's tasks, so
	// the old version's instances count as foreign there: not its to judge.
	for _, c := range started {
		if reason := waitCanary(ctx, api, checker, c.svc, o); reason != "" {
			res.Reason = reason
			return res, nil
		}
		o.Reporter.Event(fmt.Sprintf("canary %s serves in Consul %s", c.name, c.svc.Consul))
	}
	if o.Check != nil {
		o.Reporter.Event("running the canary check")
		if err := o.Check(ctx); err != nil {
			res.Reason = "canary check failed: " + textutil.OneLine(err.Error())
			return res, nil
		}
	}
	res.Passed = true
	return res, nil
}

// waitCanary waits until the canary's tasks run and serve; it returns why
// not, or "" once they do.
func waitCanary(ctx context.Context, api StackAPI, checker *mesh.Checker, svc mesh.Service, o CanaryOptions) string {
	last := "not started"
	for {
		r, err := checker.Check(ctx, svc)
		switch {
		case err != nil:
			last = textutil.OneLine(err.Error())
		case r.Verdict == mesh.Failed:
			return fmt.Sprintf("canary %s: %s", svc.Name, r.Reason)
		case r.Verdict == mesh.Converged && len(r.Tasks) == int(o.Replicas):
			return ""
		default:
			last = r.Reason
			if last == "" {
				last = fmt.Sprintf("%d of %d task(s) running", len(r.Tasks), o.Replicas)
			}
		}
		tasks, err := api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
		if err == nil {
			failed := 0
			for _, t := range tasks {
				switch t.Status.State {
				case swarm.TaskStateFailed, swarm.TaskStateRejected:
					failed++
				}
			}
			if failed >= 3 {
				return fmt.Sprintf("canary %s: its tasks keep failing (%d failed)", svc.Name, failed)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Sprintf("canary %s did not serve in time: %s", svc.Name, last)
		case <-time.After(o.Interval):
		}
	}
}
