package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/registry"
	mswarm "github.com/microctl/microctl/pkg/swarm"
)

// Step names, in the order a drain goes through them. Stable: they are
// `node drain -o json`'s step names.
const (
	StepMaintenance = "consul-maintenance"  // the node's instances put into maintenance
	StepUnrouted    = "out-of-passing-sets" // none of them is passing any more
	StepDrain       = "swarm-drain"         // availability drain
	StepMoved       = "tasks-moved"         // the node's tasks run elsewhere and pass
	StepActivate    = "swarm-activate"
	StepMaintOff    = "consul-maintenance-off"
	StepRebalance   = "rebalance"
	StepUndo        = "undo"
)

// Step is one thing done (or undone), for progress and the report.
type Step struct {
	Name   string        `json:"step"`
	Detail string        `json:"detail"`
	Took   time.Duration `json:"-"`
	TookS  float64       `json:"seconds"`
}

// DrainOptions configure Drain and Activate.
type DrainOptions struct {
	// Timeout bounds the whole drain; when it runs out the drain is
	// undone. Default 5m.
	Timeout time.Duration
	// Poll is the pause between two observations. Default 1s.
	Poll time.Duration
	// Reason is recorded with the Consul maintenance.
	Reason string
	// Progress is told about each step as it completes.
	Progress func(Step)
	// Rebalance (Activate): force-update the replicated services so Swarm
	// spreads their tasks over the nodes again.
	Rebalance bool
	// Sleep waits between observations (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o *DrainOptions) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Reason == "" {
		o.Reason = "microctl node drain"
	}
	if o.Progress == nil {
		o.Progress = func(Step) {}
	}
	if o.Sleep == nil {
		o.Sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
				return nil
			}
		}
	}
}

// Result is what a drain or an activation did.
type Result struct {
	Node      string   `json:"node"`
	NodeID    string   `json:"node_id"`
	Instances []string `json:"instances_in_maintenance"`
	Services  []string `json:"services_moved"`
	Steps     []Step   `json:"steps"`
	// Undone is true when the drain was interrupted or timed out and
	// what it had done was reversed; UndoErrors lists what could not be.
	Undone     bool     `json:"undone"`
	UndoErrors []string `json:"undo_errors,omitempty"`
}

// RefusedError: the drain would do harm, so nothing was done.
type RefusedError struct{ Node, Reason string }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refusing to drain %s: %s", e.Node, e.Reason)
}

// TimeoutError: the drain did not complete within the timeout; what it
// had done was undone (see the Result).
type TimeoutError struct {
	Step    string
	Waiting string
	After   time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %s at step %s: %s; what was done has been undone", e.After, e.Step, e.Waiting)
}

// Hint says what to do about it.
func (e *TimeoutError) Hint() string {
	return "look at the tasks with microctl ps and the instances with microctl health; retry with a longer --timeout"
}

// drainer carries one drain's state, so that undo knows what was done.
type drainer struct {
	d    DockerAPI
	c    ConsulAPI
	opts DrainOptions
	res  *Result
	node swarm.Node

	maint   []registry.ServiceInstance // put into maintenance by us
	drained bool
	step    string
	waiting string
}

func (r *drainer) done(name, detail string, since time.Time) {
	s := Step{Name: name, Detail: detail, Took: time.Since(since)}
	s.TookS = s.Took.Round(time.Millisecond).Seconds()
	r.res.Steps = append(r.res.Steps, s)
	r.opts.Progress(s)
}

// managedNode asks a swarm manager for the node named name (hostname or
// ID), and for every node: what drain and activate both start from.
func managedNode(ctx context.Context, d DockerAPI, name string) (swarm.Node, []swarm.Node, error) {
	if _, err := mswarm.RequireManager(ctx, d); err != nil {
		return swarm.Node{}, nil, err
	}
	nodes, err := d.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return swarm.Node{}, nil, fmt.Errorf("list nodes: %w", err)
	}
	n, err := find(nodes, name)
	return n, nodes, err
}

// Drain takes a node out of service without dropping requests (see the
// package comment). It refuses when no other node could run the tasks.
// When ctx is cancelled (Ctrl-C) or the timeout runs out, it undoes what
// it did (maintenance off, availability back) and returns ctx's error or
// a TimeoutError, with the Result saying what was undone.
func Drain(ctx context.Context, d DockerAPI, c ConsulAPI, name string, opts DrainOptions) (*Result, error) {
	opts.defaults()
	n, nodes, err := managedNode(ctx, d, name)
	if err != nil {
		return nil, err
	}
	res := &Result{Node: n.Description.Hostname, NodeID: n.ID}
	if n.Spec.Availability == swarm.NodeAvailabilityDrain {
		return res, &RefusedError{Node: res.Node, Reason: "it is already drained (microctl node activate undoes that)"}
	}
	others := 0
	for _, o := range nodes {
		if o.ID != n.ID && o.Spec.Availability == swarm.NodeAvailabilityActive && o.Status.State == swarm.NodeStateReady {
			others++
		}
	}
	if others == 0 {
		reason := "no other node is active and ready, so its tasks would have nowhere to run"
		if len(nodes) == 1 {
			reason = "it is the only node of the swarm: its tasks would stop and have nowhere to run"
		}
		return res, &RefusedError{Node: res.Node, Reason: reason}
	}

	r := &drainer{d: d, c: c, opts: opts, res: res, node: n}
	tctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	err = r.run(tctx)
	if err == nil {
		return res, nil
	}
	if tctx.Err() == nil {
		// A plain failure (the engine refused): undo too, a half-drained
		// node is the worst state to be left in.
		r.undo()
		return res, err
	}
	r.undo()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	return res, &TimeoutError{Step: r.step, Waiting: r.waiting, After: opts.Timeout}
}

func (r *drainer) run(ctx context.Context) error {
	// 1. Consul maintenance for every instance the node's tasks registered.
	r.step = StepMaintenance
	start := time.Now()
	tasks, err := r.runningTasks(ctx)
	if err != nil {
		return err
	}
	cat, err := r.c.Catalog(ctx)
	if err != nil {
		return err
	}
	targets := instancesOn(cat, tasks, r.node.ID)
	for _, in := range targets {
		agent := cat.Node(in.Node)
		addr := ""
		if agent != nil {
			addr = agent.Address
		}
		if err := r.c.SetMaintenance(ctx, in.Node, addr, in.ID, true, r.opts.Reason); err != nil {
			return fmt.Errorf("maintenance for %s (agent %s): %w", in.ID, in.Node, err)
		}
		r.maint = append(r.maint, in)
		r.res.Instances = append(r.res.Instances, in.ID)
	}
	r.done(StepMaintenance, fmt.Sprintf("%d instance(s) on %s put into maintenance", len(targets), r.res.Node), start)

	// 2. Wait until none of them is in a passing set any more.
	r.step, start = StepUnrouted, time.Now()
	for {
		var still []string
		cat, err := r.c.Catalog(ctx)
		if err != nil {
			return err
		}
		for _, in := range targets {
			for _, cur := range cat.Instances {
				if cur.Key() == in.Key() && passing(cat, cur) {
					still = append(still, cur.ID)
				}
			}
		}
		if len(still) == 0 {
			break
		}
		r.waiting = fmt.Sprintf("still passing in Consul: %v", still)
		if err := r.opts.Sleep(ctx, r.opts.Poll); err != nil {
			return err
		}
	}
	r.done(StepUnrouted, "no instance on the node is passing: nothing routes to it", start)

	// 3. Drain in Swarm.
	r.step, start = StepDrain, time.Now()
	affected := map[string]bool{}
	for _, t := range tasks {
		if t.NodeID == r.node.ID {
			affected[t.ServiceID] = true
		}
	}
	if err := r.setAvailability(ctx, swarm.NodeAvailabilityDrain); err != nil {
		return err
	}
	r.drained = true
	r.done(StepDrain, "availability drain", start)

	// 4. Wait until the tasks run elsewhere and pass in Consul.
	r.step, start = StepMoved, time.Now()
	registered := map[string]bool{} // service names that registered instances on the node
	for _, in := range targets {
		registered[in.Service] = true
	}
	for {
		ok, waiting, err := r.moved(ctx, affected, registered)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		r.waiting = waiting
		if err := r.opts.Sleep(ctx, r.opts.Poll); err != nil {
			return err
		}
	}
	services, err := r.d.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return err
	}
	for _, s := range services {
		if affected[s.ID] {
			r.res.Services = append(r.res.Services, s.Spec.Name)
		}
	}
	slices.Sort(r.res.Services)
	r.done(StepMoved, fmt.Sprintf("%d service(s) run their tasks on other nodes, passing in Consul", len(r.res.Services)), start)
	return nil
}

func (r *drainer) runningTasks(ctx context.Context) ([]swarm.Task, error) {
	ts, err := r.d.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return ts, nil
}

// moved: no task of the node is running any more; every affected
// replicated service has its replicas running; and every running task of
// a service that was registered has a passing instance at its address.
func (r *drainer) moved(ctx context.Context, affected, registered map[string]bool) (bool, string, error) {
	tasks, err := r.runningTasks(ctx)
	if err != nil {
		return false, "", err
	}
	services, err := r.d.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return false, "", fmt.Errorf("list services: %w", err)
	}
	running := map[string]int{}
	for _, t := range tasks {
		if t.NodeID == r.node.ID && t.Status.State == swarm.TaskStateRunning {
			return false, "a task still runs on the node", nil
		}
		if t.Status.State == swarm.TaskStateRunning {
			running[t.ServiceID]++
		}
	}
	byName := map[string]string{}
	for _, s := range services {
		if !affected[s.ID] {
			continue
		}
		byName[s.ID] = s.Spec.Name
		if m := s.Spec.Mode.Replicated; m != nil && m.Replicas != nil && uint64(running[s.ID]) < *m.Replicas {
			return false, fmt.Sprintf("%s runs %d of %d tasks", s.Spec.Name, running[s.ID], *m.Replicas), nil
		}
	}
	if len(registered) == 0 {
		return true, "", nil
	}
	cat, err := r.c.Catalog(ctx)
	if err != nil {
		return false, "", err
	}
	byIP := map[string]registry.ServiceInstance{}
	for _, in := range cat.Instances {
		byIP[in.Address] = in
	}
	for _, t := range tasks {
		name, ok := byName[t.ServiceID]
		if !ok || t.Status.State != swarm.TaskStateRunning {
			continue
		}
		for ip := range taskIPs([]swarm.Task{t}, t.NodeID) {
			in, found := byIP[ip]
			if !found {
				continue // an address on another network
			}
			if !registered[in.Service] {
				continue
			}
			if !passing(cat, in) {
				return false, fmt.Sprintf("instance %s of %s (task of %s) is not passing yet", in.ID, in.Service, name), nil
			}
		}
	}
	// Each service that had instances on the node must have a passing
	// instance again (those in maintenance do not pass).
	for svc := range registered {
		ok := false
		for _, in := range cat.Instances {
			ok = ok || (in.Service == svc && passing(cat, in))
		}
		if !ok {
			return false, fmt.Sprintf("no passing instance of %s yet", svc), nil
		}
	}
	return true, "", nil
}

func (r *drainer) setAvailability(ctx context.Context, a swarm.NodeAvailability) error {
	return setAvailability(ctx, r.d, r.node.ID, a)
}

func setAvailability(ctx context.Context, d DockerAPI, id string, a swarm.NodeAvailability) error {
	// Read the current version right before the update: the swarm
	// refuses an update against a stale one.
	nodes, err := d.NodeList(ctx, swarm.NodeListOptions{Filters: filters.NewArgs(filters.Arg("id", id))})
	if err != nil {
		return fmt.Errorf("inspect node: %w", err)
	}
	for _, n := range nodes {
		if n.ID != id {
			continue
		}
		spec := n.Spec
		spec.Availability = a
		if err := d.NodeUpdate(ctx, id, n.Meta.Version, spec); err != nil {
			return fmt.Errorf("set availability %s: %w", a, err)
		}
		return nil
	}
	return &NotFoundError{Name: id}
}

// undo reverses what the drain did, with its own deadline: the drain's
// context is already cancelled when it runs.
func (r *drainer) undo() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	var errs []error
	if r.drained {
		if err := r.setAvailability(ctx, swarm.NodeAvailabilityActive); err != nil {
			errs = append(errs, err)
		}
	}
	for _, in := range r.maint {
		agent := ""
		if cat, err := r.c.Catalog(ctx); err == nil {
			if n := cat.Node(in.Node); n != nil {
				agent = n.Address
			}
		}
		if err := r.c.SetMaintenance(ctx, in.Node, agent, in.ID, false, ""); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("maintenance off for %s: %w", in.ID, err))
		}
	}
	r.res.Undone = true
	for _, e := range errs {
		r.res.UndoErrors = append(r.res.UndoErrors, e.Error())
	}
	detail := fmt.Sprintf("maintenance off for %d instance(s)", len(r.maint))
	if r.drained {
		detail = "availability active, " + detail
	}
	r.done(StepUndo, detail, start)
}

// ErrInstanceGone is what a ConsulAPI returns when the instance no longer
// exists: nothing to undo then.
var ErrInstanceGone = errors.New("instance not registered")

func isGone(err error) bool { return errors.Is(err, ErrInstanceGone) }

// Hint says what to do about it.
func (e *RefusedError) Hint() string {
	return "nothing was changed; another node must be active and ready to take the tasks: see microctl node ls"
}
