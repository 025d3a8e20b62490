package stack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/compose"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// DeployOptions tune Deploy.
type DeployOptions struct {
	// Detach returns once every service has been created or updated
	// (after what it depends on is ready), without waiting for the stack
	// to converge.
	Detach bool
	// Timeout bounds the wait for convergence, dependencies included
	// (default 5m). The rollback, if any, gets as long again.
	Timeout time.Duration
	// RollbackOnFailure rolls back every service this deploy updated and
	// removes the ones it created when any service fails to converge.
	RollbackOnFailure bool
	Reporter          Reporter
	// Watch tunes polling (interval, failed-task threshold).
	Watch WatchOptions
}

// ServiceResult is how one service ended.
type ServiceResult struct {
	Name     string   `json:"name"`
	FullName string   `json:"full_name"`
	ID       string   `json:"id,omitempty"`
	Action   Action   `json:"action"`
	Changes  []Change `json:"changes,omitempty"`
	Phase    Phase    `json:"phase"`
	Running  uint64   `json:"running"`
	Desired  uint64   `json:"desired"`
	Message  string   `json:"message,omitempty"`
}

// Result is what a deploy did and how it ended.
type Result struct {
	Stack     string          `json:"stack"`
	Converged bool            `json:"converged"`
	Detached  bool            `json:"detached,omitempty"`
	Services  []ServiceResult `json:"services"`
	Objects   []ObjectPlan    `json:"objects,omitempty"`
	// RolledBack is set when --rollback-on-failure undid the deploy;
	// Rollback then says how each service ended.
	RolledBack bool            `json:"rolled_back,omitempty"`
	Rollback   []ServiceResult `json:"rollback,omitempty"`
	Warnings   []string        `json:"warnings,omitempty"`
	Duration   time.Duration   `json:"-"`
	Seconds    float64         `json:"seconds"`
}

// Failures returns one line per service that failed (or was skipped
// because what it depends on failed).
func (r *Result) Failures() []string {
	var out []string
	for _, s := range r.Services {
		if s.Phase == PhaseFailed || s.Phase == PhaseSkipped {
			out = append(out, fmt.Sprintf("%s: %s", s.Name, orPhase(s.Message, s.Phase)))
		}
	}
	if len(out) == 0 {
		for _, s := range r.Services {
			if !s.Phase.OK() && s.Phase != PhaseRemoved {
				out = append(out, fmt.Sprintf("%s: %s", s.Name, s.Phase))
			}
		}
	}
	return out
}

func orPhase(msg string, p Phase) string {
	if msg == "" {
		return string(p)
	}
	return msg
}

type deployer struct {
	api   StackAPI
	plan  *Plan
	opts  DeployOptions
	rep   Reporter
	start time.Time

	mu         sync.Mutex
	created    []ServicePlan // services this deploy created
	pruned     []string      // IDs of services --prune removed
	prunedJobs []string
	updated    []ServicePlan // services this deploy updated
	newNets    []string
	newConfigs []string // IDs
	newSecrets []string
	warnings   []string
	errs       []error
}

// Deploy applies a plan: prunes, creates networks, configs and secrets,
// creates and updates services in dependency order (a dependent after what
// it depends on is ready), waits for all of them at once, and on failure
// with RollbackOnFailure undoes what it did. A stack that did not converge
// is a Result with Converged false, not an error; an error means the engine
// refused something.
func Deploy(ctx context.Context, api StackAPI, p *Plan, o DeployOptions) (*Result, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Reporter == nil {
		o.Reporter = nopReporter{}
	}
	d := &deployer{api: api, plan: p, opts: o, rep: o.Reporter, start: time.Now()}
	res := &Result{Stack: p.Stack, Detached: o.Detach}

	if err := d.prune(ctx); err != nil {
		return nil, err
	}
	ids, err := d.createObjects(ctx)
	if err != nil {
		d.undoObjects(context.WithoutCancel(ctx))
		return nil, err
	}

	wo := o.Watch
	wo.Reporter = d.rep
	wo.StopOnFailure = o.RollbackOnFailure
	w := NewWatcher(api, wo)
	var todo []ServicePlan
	for _, sp := range p.Services {
		if sp.Action == ActionRemove {
			continue
		}
		if err := fillObjectIDs(&sp.spec, ids); err != nil {
			return nil, err
		}
		switch {
		case sp.Action == ActionUnchanged:
			// Untouched, so nothing to wait for before watching it.
			w.WatchSince(sp.FullName, sp.ID, KindUnchanged, sp.spec, d.start)
		case len(sp.def.DependsOn) > 0:
			var deps []string
			for _, dep := range sp.def.DependsOn {
				deps = append(deps, dep.Service)
			}
			w.Expect(sp.FullName, PhaseWaiting, "for "+strings.Join(deps, ", "))
		case sp.Action == ActionCreate:
			w.Expect(sp.FullName, PhaseStarting, "")
		default:
			w.Expect(sp.FullName, PhaseUpdating, "")
		}
		todo = append(todo, sp)
	}

	waitCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	runCtx, stopRun := context.WithCancel(waitCtx)
	defer stopRun()

	// Every service gets a goroutine that waits for what it depends on,
	// then acts; the watcher follows all of them at once.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, sp := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.deployOne(runCtx, ctx, w, sp)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
		if o.Detach {
			stopRun()
		}
	}()
	var watchErr error
	if needsWatch(todo) || !o.Detach {
		watchErr = w.Run(runCtx, done)
	}
	if o.Detach && watchErr != nil && errors.Is(watchErr, context.Canceled) && ctx.Err() == nil {
		watchErr = nil // the detach cancelled it, not the user
	}
	stopRun()
	wg.Wait()
	if watchErr != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if watchErr != nil {
		return nil, watchErr
	}

	states := map[string]State{}
	for _, s := range w.States() {
		states[s.Service] = s
	}
	res.Converged = true
	for _, sp := range p.Services {
		sr := ServiceResult{Name: sp.Name, FullName: sp.FullName, ID: sp.ID, Action: sp.Action, Changes: sp.Changes}
		if sp.Action == ActionRemove {
			sr.Phase = PhaseRemoved
			res.Services = append(res.Services, sr)
			continue
		}
		st := states[sp.FullName]
		sr.Phase, sr.Running, sr.Desired, sr.Message = st.Phase, st.Running, st.Desired, st.Message
		if sr.ID == "" {
			sr.ID = d.idOf(sp.FullName)
		}
		if o.Detach && !st.Phase.Terminal() {
			// Not waited for: it was sent to the engine, which is all
			// --detach promises.
		} else if !st.Phase.OK() {
			res.Converged = false
		}
		res.Services = append(res.Services, sr)
	}
	d.mu.Lock()
	errs := d.errs
	d.mu.Unlock()
	if len(errs) > 0 && !o.RollbackOnFailure {
		// The engine refused a create or update: say so as an error.
		return nil, errors.Join(errs...)
	}
	if !res.Converged && o.RollbackOnFailure {
		res.RolledBack = true
		res.Rollback = d.rollback(context.WithoutCancel(ctx), ctx)
	} else if res.Converged || o.Detach {
		res.Objects = d.cleanup(ctx)
	}
	res.Warnings = d.warnings
	res.Duration = time.Since(d.start)
	res.Seconds = res.Duration.Round(time.Millisecond).Seconds()
	return res, nil
}

// needsWatch reports whether some service waits for another: then the
// watcher must run even with --detach.
func needsWatch(todo []ServicePlan) bool {
	for _, sp := range todo {
		if len(sp.def.DependsOn) > 0 {
			return true
		}
	}
	return false
}

func (d *deployer) idOf(fullName string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sp := range d.created {
		if sp.FullName == fullName {
			return sp.ID
		}
	}
	return ""
}

func (d *deployer) warnf(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	d.mu.Lock()
	d.warnings = append(d.warnings, msg)
	d.mu.Unlock()
	d.rep.Event("warning: " + msg)
}

// deployOne waits for sp's dependencies (bounded by waitCtx), then creates
// or updates it with apiCtx, which only the user cancels: a create cut off
// half-way would leave a service the rollback does not know about.
func (d *deployer) deployOne(waitCtx, ctx context.Context, w *Watcher, sp ServicePlan) {
	if sp.Action == ActionUnchanged {
		return
	}
	for _, dep := range sp.def.DependsOn {
		depName := d.plan.Stack + "_" + dep.Service
		if err := w.WaitReady(waitCtx, depName); err != nil {
			if waitCtx.Err() != nil {
				return // the watcher reports the timeout
			}
			w.Finish(sp.FullName, PhaseSkipped, fmt.Sprintf("not deployed: %s did not become ready", dep.Service))
			return
		}
	}
	switch sp.Action {
	case ActionCreate:
		resp, err := d.api.ServiceCreate(ctx, sp.spec, swarm.ServiceCreateOptions{})
		if err != nil {
			d.fail(w, sp, fmt.Errorf("create service %s: %w", sp.FullName, err))
			return
		}
		d.engineWarnings(sp, resp.Warnings)
		sp.ID = resp.ID
		d.mu.Lock()
		d.created = append(d.created, sp)
		d.mu.Unlock()
		d.rep.Event(fmt.Sprintf("created service %s", sp.FullName))
		w.Watch(sp.FullName, resp.ID, KindCreated, sp.spec)
	case ActionUpdate:
		resp, err := d.api.ServiceUpdate(ctx, sp.ID, sp.current.Version, sp.spec, swarm.ServiceUpdateOptions{})
		if err != nil {
			d.fail(w, sp, fmt.Errorf("update service %s: %w", sp.FullName, err))
			return
		}
		d.engineWarnings(sp, resp.Warnings)
		d.mu.Lock()
		d.updated = append(d.updated, sp)
		d.mu.Unlock()
		d.rep.Event(fmt.Sprintf("updated service %s (%s)", sp.FullName, changeList(sp.Changes)))
		w.Watch(sp.FullName, sp.ID, KindUpdated, sp.spec)
	}
}

func (d *deployer) fail(w *Watcher, sp ServicePlan, err error) {
	err = sw.ClassifyEngine(d.api.DaemonHost(), err)
	d.mu.Lock()
	d.errs = append(d.errs, err)
	d.mu.Unlock()
	w.Finish(sp.FullName, PhaseFailed, textutil.OneLine(err.Error()))
}

func (d *deployer) engineWarnings(sp ServicePlan, warnings []string) {
	for _, w := range warnings {
		d.warnf("service %s: %s", sp.FullName, textutil.OneLine(w))
	}
}

func changeList(cs []Change) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.String())
	}
	return strings.Join(s, ", ")
}

// prune removes the stack's services the file no longer has (--prune).
func (d *deployer) prune(ctx context.Context) error {
	for _, sp := range d.plan.Services {
		if sp.Action != ActionRemove {
			continue
		}
		if err := d.api.ServiceRemove(ctx, sp.ID); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove service %s: %w", sp.FullName, sw.ClassifyEngine(d.api.DaemonHost(), err))
		}
		d.pruned = append(d.pruned, sp.ID)
		if m := sp.current.Spec.Mode; m.ReplicatedJob != nil || m.GlobalJob != nil {
			d.prunedJobs = append(d.prunedJobs, sp.ID)
		}
		d.rep.Event("removed service " + sp.FullName + " (not in the file)")
	}
	if len(d.prunedJobs) > 0 {
		// Swarm leaves a removed job's tasks running (see waitTasksGone).
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := waitTasksGone(wctx, d.api, d.plan.Stack, d.prunedJobs, d.prunedJobs, func(w string) { d.warnf("%s", w) }); err != nil {
			d.warnf("tasks of pruned jobs still stopping: %v", err)
		}
	}
	return nil
}

// createObjects creates the networks, configs and secrets the plan lists
// as new, and returns every config and secret name the services use with
// its ID.
func (d *deployer) createObjects(ctx context.Context) (map[string]string, error) {
	host := d.api.DaemonHost()
	ids := map[string]string{}
	nets := map[string]compose.Network{}
	for _, n := range d.plan.stack.Networks {
		nets[n.Name] = n
	}
	cfgs, secs := map[string]compose.Object{}, map[string]compose.Object{}
	for _, o := range d.plan.stack.Configs {
		cfgs[o.Name] = o
	}
	for _, o := range d.plan.stack.Secrets {
		secs[o.Name] = o
	}
	for _, op := range d.plan.Objects {
		if op.ID != "" {
			ids[op.Kind+"/"+op.Name] = op.ID
		}
		if op.Action != ActionCreate {
			continue
		}
		switch op.Kind {
		case "network":
			_, err := d.api.NetworkCreate(ctx, op.Name, nets[op.Name].Options)
			if err != nil {
				if cerrdefs.IsConflict(err) {
					continue // created meanwhile (another deploy of the same stack)
				}
				return nil, fmt.Errorf("create network %s: %w", op.Name, sw.ClassifyEngine(host, err))
			}
			d.newNets = append(d.newNets, op.Name)
			d.rep.Event("created network " + op.Name)
		case "config":
			o := cfgs[op.Name]
			resp, err := d.api.ConfigCreate(ctx, swarm.ConfigSpec{
				Annotations: swarm.Annotations{Name: o.Name, Labels: o.Labels}, Data: o.Data, Templating: o.Templating})
			if err != nil {
				if cerrdefs.IsConflict(err) {
					id, lerr := d.lookupConfig(ctx, op.Name)
					if lerr == nil {
						ids["config/"+op.Name] = id
						continue
					}
				}
				return nil, fmt.Errorf("create config %s: %w", op.Name, sw.ClassifyEngine(host, err))
			}
			ids["config/"+op.Name] = resp.ID
			d.newConfigs = append(d.newConfigs, resp.ID)
			d.rep.Event("created config " + op.Name)
		case "secret":
			o := secs[op.Name]
			resp, err := d.api.SecretCreate(ctx, swarm.SecretSpec{
				Annotations: swarm.Annotations{Name: o.Name, Labels: o.Labels}, Data: o.Data, Driver: o.Driver, Templating: o.Templating})
			if err != nil {
				if cerrdefs.IsConflict(err) {
					id, lerr := d.lookupSecret(ctx, op.Name)
					if lerr == nil {
						ids["secret/"+op.Name] = id
						continue
					}
				}
				return nil, fmt.Errorf("create secret %s: %w", op.Name, sw.ClassifyEngine(host, err))
			}
			ids["secret/"+op.Name] = resp.ID
			d.newSecrets = append(d.newSecrets, resp.ID)
			d.rep.Event("created secret " + op.Name)
		}
	}
	return ids, nil
}

func (d *deployer) lookupConfig(ctx context.Context, name string) (string, error) {
	list, err := d.api.ConfigList(ctx, swarm.ConfigListOptions{})
	if err != nil {
		return "", err
	}
	for _, c := range list {
		if c.Spec.Name == name {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("config %s not found", name)
}

func (d *deployer) lookupSecret(ctx context.Context, name string) (string, error) {
	list, err := d.api.SecretList(ctx, swarm.SecretListOptions{})
	if err != nil {
		return "", err
	}
	for _, s := range list {
		if s.Spec.Name == name {
			return s.ID, nil
		}
	}
	return "", fmt.Errorf("secret %s not found", name)
}

// fillObjectIDs puts config and secret IDs into the references, which the
// engine requires alongside the names.
func fillObjectIDs(spec *swarm.ServiceSpec, ids map[string]string) error {
	cs := spec.TaskTemplate.ContainerSpec
	for _, c := range cs.Configs {
		id, ok := ids["config/"+c.ConfigName]
		if !ok {
			return fmt.Errorf("config %s: no such config on the engine", c.ConfigName)
		}
		c.ConfigID = id
	}
	for _, s := range cs.Secrets {
		id, ok := ids["secret/"+s.SecretName]
		if !ok {
			return fmt.Errorf("secret %s: no such secret on the engine", s.SecretName)
		}
		s.SecretID = id
	}
	return nil
}

// undoObjects removes what createObjects made when the deploy cannot go on.
func (d *deployer) undoObjects(ctx context.Context) {
	for _, id := range d.newConfigs {
		_ = d.api.ConfigRemove(ctx, id)
	}
	for _, id := range d.newSecrets {
		_ = d.api.SecretRemove(ctx, id)
	}
	for _, n := range d.newNets {
		_ = d.api.NetworkRemove(ctx, n)
	}
}

// cleanup removes old versions of the stack's configs and secrets that
// nothing uses any more (neither a service's spec nor its previous spec,
// which a rollback returns to) and, with --prune, every unused config,
// secret and network of the stack. Failures are warnings: the deploy
// itself succeeded.
func (d *deployer) cleanup(ctx context.Context) []ObjectPlan {
	host := d.api.DaemonHost()
	all, err := d.api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		d.warnf("cleanup skipped: %v", sw.ClassifyEngine(host, err))
		return nil
	}
	cfgs, err1 := d.api.ConfigList(ctx, swarm.ConfigListOptions{})
	secs, err2 := d.api.SecretList(ctx, swarm.SecretListOptions{})
	nets, err3 := d.api.NetworkList(ctx, network.ListOptions{Filters: stackFilter(d.plan.Stack)})
	if err := errors.Join(err1, err2, err3); err != nil {
		d.warnf("cleanup skipped: %v", sw.ClassifyEngine(host, err))
		return nil
	}
	p := *d.plan
	p.configs, p.secrets = cfgs, secs
	todo := p.cleanup(liveRefs(all), nets)
	for _, op := range todo {
		if op.Kind == "network" {
			// A network leaves the node only once the pruned services'
			// containers have stopped.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := waitTasksGone(wctx, d.api, d.plan.Stack, d.pruned, d.prunedJobs, func(w string) { d.warnf("%s", w) })
			cancel()
			if err != nil {
				d.warnf("pruned services still stopping: %v", err)
			}
			break
		}
	}
	var done []ObjectPlan
	for _, op := range todo {
		var err error
		switch op.Kind {
		case "config":
			err = d.api.ConfigRemove(ctx, op.ID)
		case "secret":
			err = d.api.SecretRemove(ctx, op.ID)
		case "network":
			err = removeNetwork(ctx, d.api, op.ID, 15*time.Second)
		}
		if err != nil && !cerrdefs.IsNotFound(err) {
			d.warnf("could not remove %s %s: %s", op.Kind, op.Name, textutil.OneLine(err.Error()))
			continue
		}
		d.rep.Event(fmt.Sprintf("removed %s %s (%s)", op.Kind, op.Name, op.Note))
		done = append(done, op)
	}
	return done
}

// removeNetwork retries while the network still has endpoints: tasks of a
// removed service detach a little after the service is gone.
func removeNetwork(ctx context.Context, api interface {
	NetworkRemove(ctx context.Context, network string) error
}, id string, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		err := api.NetworkRemove(ctx, id)
		if err == nil || cerrdefs.IsNotFound(err) {
			return nil
		}
		if !strings.Contains(err.Error(), "active endpoints") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
