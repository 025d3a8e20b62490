package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/compose"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// ServiceRow is one service as `microctl ps` shows it.
type ServiceRow struct {
	Stack         string   `json:"stack"`
	Name          string   `json:"name"`
	ID            string   `json:"id"`
	Image         string   `json:"image"`
	Mode          string   `json:"mode"`
	Running       uint64   `json:"running"`
	Desired       uint64   `json:"desired"`
	Completed     uint64   `json:"completed,omitempty"`
	Ports         []string `json:"ports"`
	UpdateState   string   `json:"update_state,omitempty"`
	UpdateMessage string   `json:"update_message,omitempty"`
}

// StackNotFoundError means no service, network, config or secret carries
// the stack's label.
type StackNotFoundError struct{ Stack string }

func (e *StackNotFoundError) Error() string { return "nothing found in stack " + e.Stack }

// Hint says what to do about it.
func (e *StackNotFoundError) Hint() string { return "list the stacks with: microctl ps" }

// ListServices lists a stack's services (every service when stack is
// empty) with their task counts, sorted by name.
func ListServices(ctx context.Context, api StackAPI, stack string) ([]ServiceRow, error) {
	// Only a manager can list services; say so rather than pass on the
	// engine's message.
	if _, err := sw.RequireManager(ctx, api); err != nil {
		return nil, err
	}
	opts := swarm.ServiceListOptions{Status: true}
	if stack != "" {
		opts.Filters = stackFilter(stack)
	}
	services, err := api.ServiceList(ctx, opts)
	if err != nil {
		return nil, sw.ClassifyEngine(api.DaemonHost(), err)
	}
	if stack != "" && len(services) == 0 {
		return nil, &StackNotFoundError{Stack: stack}
	}
	rows := make([]ServiceRow, 0, len(services))
	for _, s := range services {
		rows = append(rows, serviceRow(s))
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Stack != rows[j].Stack {
			return rows[i].Stack < rows[j].Stack
		}
		return rows[i].Name < rows[j].Name
	})
	return rows, nil
}

func serviceRow(s swarm.Service) ServiceRow {
	r := ServiceRow{Stack: s.Spec.Labels[compose.LabelNamespace], Name: s.Spec.Name, ID: s.ID, Mode: ModeName(s.Spec.Mode), Ports: []string{}}
	r.Image = s.Spec.Labels[compose.LabelImage]
	if r.Image == "" && s.Spec.TaskTemplate.ContainerSpec != nil {
		r.Image = imageWithoutDigest(s.Spec.TaskTemplate.ContainerSpec.Image)
	}
	if st := s.ServiceStatus; st != nil {
		r.Running, r.Desired, r.Completed = st.RunningTasks, st.DesiredTasks, st.CompletedTasks
	}
	if s.Spec.Mode.ReplicatedJob != nil {
		r.Desired = replicatedJobMode{}.count(s, nil).desired
	}
	if s.Spec.EndpointSpec != nil {
		for _, p := range s.Spec.EndpointSpec.Ports {
			r.Ports = append(r.Ports, portString(p))
		}
	}
	if u := s.UpdateStatus; u != nil {
		r.UpdateState, r.UpdateMessage = string(u.State), u.Message
	}
	return r
}

// ModeName is a service mode as compose spells it.
func ModeName(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.ReplicatedJob != nil:
		return "replicated-job"
	case m.GlobalJob != nil:
		return "global-job"
	}
	return "replicated"
}

func portString(p swarm.PortConfig) string {
	mode := p.PublishMode
	if mode == "" {
		mode = swarm.PortConfigPublishModeIngress
	}
	if p.PublishedPort == 0 {
		return fmt.Sprintf("%d/%s", p.TargetPort, compose.ProtocolOrTCP(p.Protocol))
	}
	return fmt.Sprintf("%d->%d/%s (%s)", p.PublishedPort, p.TargetPort, compose.ProtocolOrTCP(p.Protocol), mode)
}

// RemoveResult lists what RemoveStack removed.
type RemoveResult struct {
	Stack    string   `json:"stack"`
	Services []string `json:"services"`
	Networks []string `json:"networks"`
	Configs  []string `json:"configs"`
	Secrets  []string `json:"secrets"`
}

// RemoveStack removes a stack's services, then waits until their tasks are
// gone, then removes its secrets, configs and networks (a network can only
// go once no container is attached). It returns when all of it is gone.
func RemoveStack(ctx context.Context, api StackAPI, stack string, rep Reporter) (*RemoveResult, error) {
	if rep == nil {
		rep = nopReporter{}
	}
	if _, err := sw.RequireManager(ctx, api); err != nil {
		return nil, err
	}
	host := api.DaemonHost()
	f := stackFilter(stack)
	services, err := api.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, sw.ClassifyEngine(host, err)
	}
	nets, err := api.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, sw.ClassifyEngine(host, err)
	}
	configs, err := api.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		return nil, sw.ClassifyEngine(host, err)
	}
	secrets, err := api.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		return nil, sw.ClassifyEngine(host, err)
	}
	if len(services)+len(nets)+len(configs)+len(secrets) == 0 {
		return nil, &StackNotFoundError{Stack: stack}
	}
	res := &RemoveResult{Stack: stack, Services: []string{}, Networks: []string{}, Configs: []string{}, Secrets: []string{}}
	var errs []error
	var ids, jobs []string
	sort.Slice(services, func(i, j int) bool { return services[i].Spec.Name < services[j].Spec.Name })
	for _, s := range services {
		if err := api.ServiceRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove service %s: %w", s.Spec.Name, err))
			continue
		}
		ids = append(ids, s.ID)
		if s.Spec.Mode.ReplicatedJob != nil || s.Spec.Mode.GlobalJob != nil {
			jobs = append(jobs, s.ID)
		}
		res.Services = append(res.Services, s.Spec.Name)
		rep.Event("removed service " + s.Spec.Name)
	}
	if len(ids) > 0 {
		rep.Event(fmt.Sprintf("waiting for the tasks of %d services to stop", len(ids)))
		if err := waitTasksGone(ctx, api, stack, ids, jobs, func(w string) { rep.Event("warning: " + w) }); err != nil {
			return res, fmt.Errorf("waiting for tasks to stop: %w", err)
		}
	}
	for _, s := range secrets {
		if err := api.SecretRemove(ctx, s.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove secret %s: %w", s.Spec.Name, err))
			continue
		}
		res.Secrets = append(res.Secrets, s.Spec.Name)
		rep.Event("removed secret " + s.Spec.Name)
	}
	for _, c := range configs {
		if err := api.ConfigRemove(ctx, c.ID); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove config %s: %w", c.Spec.Name, err))
			continue
		}
		res.Configs = append(res.Configs, c.Spec.Name)
		rep.Event("removed config " + c.Spec.Name)
	}
	for _, n := range nets {
		if err := removeNetwork(ctx, api, n.ID, 30*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		res.Networks = append(res.Networks, n.Name)
		rep.Event("removed network " + n.Name)
	}
	sort.Strings(res.Networks)
	sort.Strings(res.Configs)
	sort.Strings(res.Secrets)
	return res, errors.Join(errs...)
}

// WaitOptions tune RollbackService and Scale.
type WaitOptions struct {
	Detach   bool
	Timeout  time.Duration
	Reporter Reporter
	Watch    WatchOptions
}

// ServiceNotFoundError is a service name or ID the engine does not know.
type ServiceNotFoundError struct{ Name string }

func (e *ServiceNotFoundError) Error() string { return "no such service: " + e.Name }

// Hint says what to do about it.
func (e *ServiceNotFoundError) Hint() string {
	return "services are named STACK_SERVICE; list them with: microctl ps"
}

func inspectService(ctx context.Context, api StackAPI, name string) (swarm.Service, error) {
	s, _, err := api.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return s, &ServiceNotFoundError{Name: name}
		}
		return s, sw.ClassifyEngine(api.DaemonHost(), err)
	}
	return s, nil
}

// RollbackService rolls one service back to its previous spec with
// Swarm's rollback and, unless detached, waits for it to converge.
func RollbackService(ctx context.Context, api StackAPI, name string, o WaitOptions) (State, error) {
	if _, err := sw.RequireManager(ctx, api); err != nil {
		return State{}, err
	}
	svc, err := inspectService(ctx, api, name)
	if err != nil {
		return State{}, err
	}
	if svc.PreviousSpec == nil {
		return State{}, fmt.Errorf("service %s has no previous spec to roll back to (it was never updated)", svc.Spec.Name)
	}
	if _, err := api.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"}); err != nil {
		return State{}, fmt.Errorf("roll back %s: %w", svc.Spec.Name, sw.ClassifyEngine(api.DaemonHost(), err))
	}
	states, err := waitFor(ctx, api, o, []watched{{svc.Spec.Name, svc.ID, KindRollback, svc.Spec}})
	if err != nil {
		return State{}, err
	}
	return states[0], nil
}

// Scale sets the replica count of replicated services and, unless
// detached, waits until that many tasks run.
func Scale(ctx context.Context, api StackAPI, replicas map[string]uint64, o WaitOptions) ([]State, error) {
	if _, err := sw.RequireManager(ctx, api); err != nil {
		return nil, err
	}
	var ws []watched
	for _, name := range slices.Sorted(maps.Keys(replicas)) {
		svc, err := inspectService(ctx, api, name)
		if err != nil {
			return nil, err
		}
		n := replicas[name]
		switch {
		case svc.Spec.Mode.Replicated != nil:
			svc.Spec.Mode.Replicated.Replicas = &n
		case svc.Spec.Mode.ReplicatedJob != nil:
			svc.Spec.Mode.ReplicatedJob.MaxConcurrent = &n
			svc.Spec.Mode.ReplicatedJob.TotalCompletions = &n
		default:
			return nil, fmt.Errorf("service %s is %s: only replicated services can be scaled", svc.Spec.Name, ModeName(svc.Spec.Mode))
		}
		if _, err := api.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
			return nil, fmt.Errorf("scale %s: %w", svc.Spec.Name, sw.ClassifyEngine(api.DaemonHost(), err))
		}
		ws = append(ws, watched{svc.Spec.Name, svc.ID, KindScaled, svc.Spec})
	}
	return waitFor(ctx, api, o, ws)
}

type watched struct {
	name, id string
	kind     Kind
	spec     swarm.ServiceSpec
}

func waitFor(ctx context.Context, api StackAPI, o WaitOptions, ws []watched) ([]State, error) {
	wo := o.Watch
	wo.Reporter = o.Reporter
	w := NewWatcher(api, wo)
	for _, x := range ws {
		w.Watch(x.name, x.id, x.kind, x.spec)
	}
	if o.Detach {
		return w.States(), nil
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := w.Run(wctx, nil); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, sw.ClassifyEngine(api.DaemonHost(), err)
	}
	return w.States(), nil
}

// StackNames lists the stacks that have services, sorted.
func StackNames(ctx context.Context, api StackAPI) ([]string, error) {
	services, err := api.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", compose.LabelNamespace))})
	if err != nil {
		return nil, sw.ClassifyEngine(api.DaemonHost(), err)
	}
	seen := map[string]bool{}
	for _, s := range services {
		seen[s.Spec.Labels[compose.LabelNamespace]] = true
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// ParseScale parses SERVICE=N arguments.
func ParseScale(args []string) (map[string]uint64, error) {
	out := map[string]uint64{}
	for _, a := range args {
		name, n, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q: want SERVICE=REPLICAS", a)
		}
		var v uint64
		if _, err := fmt.Sscanf(n, "%d", &v); err != nil || fmt.Sprint(v) != n {
			return nil, fmt.Errorf("%q: replicas must be a whole number", a)
		}
		out[name] = v
	}
	return out, nil
}
