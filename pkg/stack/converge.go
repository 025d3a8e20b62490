package stack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stringid"

	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/compose"
)

// WatchAPI is what watching services converge needs.
type WatchAPI interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
}

// Phase is where one service is in a deploy.
type Phase string

const (
	PhaseWaiting     Phase = "waiting"   // for what it depends on
	PhaseStarting    Phase = "starting"  // created; tasks starting
	PhaseUpdating    Phase = "updating"  // updated; Swarm replacing tasks
	PhaseVerifying   Phase = "verifying" // converged; watching it stay so
	PhaseConverged   Phase = "converged" // done
	PhaseCompleted   Phase = "completed" // a job that ran to completion
	PhaseUnchanged   Phase = "unchanged" // not touched and running as it should
	PhaseFailed      Phase = "failed"    // see Message
	PhaseSkipped     Phase = "skipped"   // not deployed: a dependency failed
	PhaseRollingBack Phase = "rolling-back"
	PhaseRolledBack  Phase = "rolled-back"
	PhaseRemoving    Phase = "removing"
	PhaseRemoved     Phase = "removed"
	// PhaseInterrupted: the user stopped the deploy while it was going.
	PhaseInterrupted Phase = "interrupted"
)

// Terminal reports whether the phase is final.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseConverged, PhaseCompleted, PhaseUnchanged, PhaseFailed, PhaseSkipped, PhaseRolledBack, PhaseRemoved, PhaseInterrupted:
		return true
	}
	return false
}

// OK reports whether a final phase is a success.
func (p Phase) OK() bool {
	return p == PhaseConverged || p == PhaseCompleted || p == PhaseUnchanged
}

// State is one service's progress, as a progress line shows it.
type State struct {
	Service string `json:"service"` // STACK_SERVICE
	Phase   Phase  `json:"phase"`
	Running uint64 `json:"running"`
	Desired uint64 `json:"desired"`
	Job     bool   `json:"job,omitempty"`
	Update  string `json:"update_state,omitempty"`
	// Message is the latest task error, an update message, or why the
	// service failed.
	Message string `json:"message,omitempty"`
	// VerifyLeft is how long it must stay converged before it counts.
	VerifyLeft time.Duration `json:"-"`
}

// Reporter receives progress: States after every poll (every service, in a
// stable order), Event for one-off lines.
type Reporter interface {
	States(states []State)
	Event(msg string)
}

type nopReporter struct{}

func (nopReporter) States([]State) {}
func (nopReporter) Event(string)   {}

// Kind is what was done to a watched service; it decides what converged
// means for it.
type Kind int

const (
	KindCreated   Kind = iota // new: converged when its tasks run, then stable for the monitor period
	KindUpdated               // Swarm's rolling update must complete
	KindUnchanged             // untouched: converged when its tasks run, then stable for the monitor period
	KindRollback              // rolled back: Swarm's rollback must complete
	KindScaled                // replicas changed: tasks must run, no update involved
)

// activePhase is the phase shown while the service has not converged.
func (k Kind) activePhase() Phase {
	switch k {
	case KindCreated, KindUnchanged:
		return PhaseStarting
	case KindRollback:
		return PhaseRollingBack
	}
	return PhaseUpdating
}

// followsUpdate reports whether the service's update status is ours to
// judge: only an update or rollback we asked for starts one.
func (k Kind) followsUpdate() bool {
	return k == KindUpdated || k == KindRollback
}

// settledPhase is the final phase of a converged service when no
// stability watch is needed, and false when the monitor period must pass
// first: scaling replaced no task, and Swarm itself watched the monitor
// period before it called an update (or rollback) completed. An unchanged
// service is watched for its monitor period too: a crash-looping service
// whose task happens to run at one poll is not "unchanged and fine".
func (k Kind) settledPhase(u *swarm.UpdateStatus, cutoff time.Time) (Phase, bool) {
	switch k {
	case KindScaled:
		return PhaseConverged, true
	case KindRollback:
		return PhaseRolledBack, true
	case KindUpdated:
		if u != nil && u.State == swarm.UpdateStateCompleted && u.StartedAt != nil && !u.StartedAt.Before(cutoff) {
			return PhaseConverged, true
		}
	}
	return "", false
}

// WatchOptions tune a Watcher.
type WatchOptions struct {
	// Interval between polls (default 250ms).
	Interval time.Duration
	// FailedTasks is how many failed tasks make a service failed
	// (default 3): Swarm restarts failing tasks for ever, so without a
	// bound a crashing service would only end at --timeout.
	FailedTasks int
	// StopOnFailure ends the watch at the first failure (for
	// --rollback-on-failure) instead of letting the others finish.
	StopOnFailure bool
	Reporter      Reporter
	// Gate judges the services marked with SetGated (mesh services) every
	// poll: Swarm's convergence is then not enough, the gate must agree.
	Gate Gate
}

// GateState is a gate's answer for one service in one poll.
type GateState struct {
	// Converged: serving by the gate's definition.
	Converged bool
	// Failed: the gate saw a failure (Message says which).
	Failed  bool
	Message string
	// Off: the gate gave up on this service (an inferred mesh service
	// whose Consul does not answer); Swarm alone decides from now on.
	Off bool
}

// Gate judges a service beyond Swarm's view of it (pkg/stack's mesh gate).
type Gate interface {
	Check(ctx context.Context, name, id string) GateState
}

// Watcher follows many services at once: one ServiceList and one TaskList
// per poll for all of them, whatever their number.
type Watcher struct {
	api  WatchAPI
	opts WatchOptions
	now  func() time.Time

	mu      sync.Mutex
	targets []*target // in display order
	byName  map[string]*target
	changed chan struct{} // closed and replaced on every state change
}

type target struct {
	name    string
	id      string
	kind    Kind
	since   time.Time // when we acted on it: older task failures do not count
	monitor time.Duration
	job     bool
	mode    modeEvaluator

	state       State
	convergedAt time.Time
	ready       bool // running as it should (dependents may start), maybe not stable yet
	failed      map[string]bool
	lastErr     string
	lastErrNode string // the node of the task behind lastErr
	gated       bool   // the gate must agree before it counts as converged
	gateMsg     string // the gate's latest reason to wait
}

// NewWatcher returns a Watcher with nothing to watch yet.
func NewWatcher(api WatchAPI, o WatchOptions) *Watcher {
	if o.Interval <= 0 {
		o.Interval = 250 * time.Millisecond
	}
	if o.FailedTasks <= 0 {
		o.FailedTasks = 3
	}
	if o.Reporter == nil {
		o.Reporter = nopReporter{}
	}
	return &Watcher{api: api, opts: o, now: time.Now, byName: map[string]*target{}, changed: make(chan struct{})}
}

// Expect announces a service that will be watched once it is deployed; it
// shows in phase, with msg, until then (waiting, for one that waits for
// others).
func (w *Watcher) Expect(name string, phase Phase, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.byName[name]; ok {
		return
	}
	t := &target{name: name, state: State{Service: name, Phase: phase, Message: msg}}
	w.targets = append(w.targets, t)
	w.byName[name] = t
}

// Watch starts watching a service the deploy acted on just now.
func (w *Watcher) Watch(name, id string, kind Kind, spec swarm.ServiceSpec) {
	w.WatchSince(name, id, kind, spec, w.now())
}

// WatchSince is Watch for a service acted on at since: task failures and
// update states from before it do not count.
func (w *Watcher) WatchSince(name, id string, kind Kind, spec swarm.ServiceSpec, since time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.byName[name]
	if !ok {
		t = &target{name: name}
		w.targets = append(w.targets, t)
		w.byName[name] = t
	}
	t.id, t.kind, t.since = id, kind, since
	t.monitor = defaultMonitor
	if spec.UpdateConfig != nil && spec.UpdateConfig.Monitor > 0 {
		t.monitor = spec.UpdateConfig.Monitor
	}
	if kind == KindRollback && spec.RollbackConfig != nil && spec.RollbackConfig.Monitor > 0 {
		t.monitor = spec.RollbackConfig.Monitor
	}
	t.job = spec.Mode.ReplicatedJob != nil || spec.Mode.GlobalJob != nil
	t.mode = evaluatorFor(spec.Mode)
	t.failed = map[string]bool{}
	t.convergedAt, t.ready, t.lastErr = time.Time{}, false, ""
	t.state = State{Service: name, Job: t.job, Phase: kind.activePhase()}
	w.signal()
}

// SetGated marks a service as judged by the gate too (before or after it
// is watched).
func (w *Watcher) SetGated(name string, gated bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.byName[name]
	if !ok {
		t = &target{name: name, state: State{Service: name}}
		w.targets = append(w.targets, t)
		w.byName[name] = t
	}
	t.gated = gated
}

// Finish sets a service's final phase from outside (skipped, removed,
// failed before it could be watched).
func (w *Watcher) Finish(name string, phase Phase, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.byName[name]
	if !ok {
		t = &target{name: name}
		w.targets = append(w.targets, t)
		w.byName[name] = t
	}
	t.id = ""
	t.state.Service, t.state.Phase, t.state.Message = name, phase, msg
	w.signal()
}

// signal wakes everyone waiting on a state change; w.mu must be held.
func (w *Watcher) signal() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// WaitReady blocks until the service runs as it should (healthy, when it
// has a health check, since Swarm counts a task as running only once it
// is) or, for a job, has completed; it returns an error if it failed.
func (w *Watcher) WaitReady(ctx context.Context, name string) error {
	for {
		w.mu.Lock()
		t, ok := w.byName[name]
		var ready bool
		var phase Phase
		var msg string
		if ok {
			ready, phase, msg = t.ready || t.state.Phase.OK(), t.state.Phase, t.state.Message
		}
		ch := w.changed
		w.mu.Unlock()
		switch {
		case !ok:
			return fmt.Errorf("%s is not part of the deploy", name)
		case ready:
			return nil
		case phase.Terminal():
			if msg == "" {
				msg = string(phase)
			}
			return fmt.Errorf("%s: %s", name, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// States returns a copy of every service's state.
func (w *Watcher) States() []State {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]State, 0, len(w.targets))
	for _, t := range w.targets {
		out = append(out, t.state)
	}
	return out
}

// Run polls until every service is in a final phase, ctx ends (its
// deadline is --timeout: every service still going is then failed with
// what it was doing), or, with StopOnFailure, one has failed. done, when
// not nil, must be closed once no more services will be added.
func (w *Watcher) Run(ctx context.Context, done <-chan struct{}) error {
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	for {
		if err := w.poll(ctx); err != nil {
			if ctx.Err() != nil {
				return w.expire(ctx)
			}
			return err
		}
		w.opts.Reporter.States(w.States())
		allDone, anyFailed := w.status()
		if anyFailed && w.opts.StopOnFailure {
			return nil
		}
		if allDone && isClosed(done) {
			return nil
		}
		select {
		case <-ctx.Done():
			return w.expire(ctx)
		case <-tick.C:
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (w *Watcher) status() (allDone, anyFailed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	allDone = true
	for _, t := range w.targets {
		if !t.state.Phase.Terminal() {
			allDone = false
		}
		if t.state.Phase == PhaseFailed {
			anyFailed = true
		}
	}
	return allDone, anyFailed
}

// expire fails what is still going when the deadline passed; on a plain
// cancellation (Ctrl-C) it returns the context's error.
func (w *Watcher) expire(ctx context.Context) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	w.mu.Lock()
	for _, t := range w.targets {
		if t.state.Phase.Terminal() {
			continue
		}
		what := fmt.Sprintf("timed out while %s (%d/%d running)", t.state.Phase, t.state.Running, t.state.Desired)
		if t.state.Phase == PhaseWaiting {
			what = "timed out waiting for its dependencies"
		}
		if t.gateMsg != "" {
			what += ": " + t.gateMsg
		} else if t.lastErr != "" {
			what += ": " + t.lastErr
		}
		t.state.Phase, t.state.Message = PhaseFailed, what
	}
	w.signal()
	w.mu.Unlock()
	w.opts.Reporter.States(w.States())
	return nil
}

func (w *Watcher) poll(ctx context.Context) error {
	w.mu.Lock()
	var ids []string
	polled := map[string]bool{}
	for _, t := range w.targets {
		if t.id != "" && !t.state.Phase.Terminal() {
			ids = append(ids, t.id)
			polled[t.id] = true
		}
	}
	w.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	sf := filters.NewArgs()
	tf := filters.NewArgs(filters.Arg("_up-to-date", "true"))
	for _, id := range ids {
		sf.Add("id", id)
		tf.Add("service", id)
	}
	services, err := w.api.ServiceList(ctx, swarm.ServiceListOptions{Filters: sf, Status: true})
	if err != nil {
		return err
	}
	byID := map[string]swarm.Service{}
	for _, s := range services {
		byID[s.ID] = s
	}
	var tasks []swarm.Task
	if len(byID) == len(ids) {
		tasks, err = w.api.TaskList(ctx, swarm.TaskListOptions{Filters: tf})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
		// A service removed between the two calls: the next poll sees it gone.
	}
	tasksBy := map[string][]swarm.Task{}
	for _, t := range tasks {
		tasksBy[t.ServiceID] = append(tasksBy[t.ServiceID], t)
	}
	gates := w.checkGates(ctx)

	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	changed := false
	for _, t := range w.targets {
		// A service that started being watched during this poll (its
		// deploy finished while the engine and the gate were read) was
		// not asked about: it is evaluated at the next poll, not taken
		// for removed.
		if t.id == "" || !polled[t.id] || t.state.Phase.Terminal() {
			continue
		}
		before := t.state
		wasReady := t.ready
		svc, ok := byID[t.id]
		if !ok {
			t.state.Phase, t.state.Message = PhaseFailed, "the service was removed while the deploy watched it"
		} else if len(byID) == len(ids) {
			w.evaluate(t, svc, tasksBy[t.id], now, gates[t.name])
		}
		if t.state != before || t.ready != wasReady {
			changed = true
		}
	}
	if changed {
		w.signal()
	}
	return nil
}

// evaluate decides one service's phase from its update status and its
// up-to-date tasks. What is common to every service (update states, task
// failures, a missing image) is decided here; how tasks are counted and
// what "done" means is the business of the service's mode evaluator.
func (w *Watcher) evaluate(t *target, svc swarm.Service, tasks []swarm.Task, now time.Time, gs *GateState) {
	st := &t.state
	st.Update, st.Message = "", ""
	if svc.UpdateStatus != nil {
		st.Update = string(svc.UpdateStatus.State)
	}
	// Tasks from before we acted do not count as failures of this deploy
	// (a second of slack for clock skew between us and the manager).
	cutoff := t.since.Add(-time.Second)
	tasks = t.mode.current(svc, tasks)
	t.noteFailures(tasks, cutoff)
	c := t.mode.count(svc, tasks)
	st.Running, st.Desired = c.shown, c.desired
	st.Message = t.lastErr

	if msg := w.failure(t, svc, cutoff); msg != "" {
		st.Phase, st.Message = PhaseFailed, msg
		return
	}
	if gs != nil && t.gated && gs.Failed {
		st.Phase, st.Message = PhaseFailed, gs.Message
		return
	}
	t.mode.settle(t, svc, c, cutoff, now)
	// The gate holds a service Swarm calls done until the gate agrees.
	if gs != nil && t.gated && (st.Phase.OK() || st.Phase == PhaseRolledBack) && !gs.Converged {
		st.Phase, st.VerifyLeft, st.Message = PhaseVerifying, 0, "mesh: "+gs.Message
	}
}

// checkGates asks the gate about every gated service still going.
func (w *Watcher) checkGates(ctx context.Context) map[string]*GateState {
	if w.opts.Gate == nil {
		return nil
	}
	type job struct{ name, id string }
	var jobs []job
	w.mu.Lock()
	for _, t := range w.targets {
		if t.gated && t.id != "" && !t.state.Phase.Terminal() {
			jobs = append(jobs, job{t.name, t.id})
		}
	}
	w.mu.Unlock()
	out := map[string]*GateState{}
	for _, j := range jobs {
		gs := w.opts.Gate.Check(ctx, j.name, j.id)
		out[j.name] = &gs
	}
	w.mu.Lock()
	for name, gs := range out {
		if t := w.byName[name]; t != nil {
			if gs.Off {
				t.gated, t.gateMsg = false, ""
				delete(out, name)
				continue
			}
			t.gateMsg = gs.Message
			if gs.Converged {
				t.gateMsg = ""
			}
		}
	}
	w.mu.Unlock()
	return out
}

// noteFailures records the tasks that failed since cutoff and the latest
// task error.
func (t *target) noteFailures(tasks []swarm.Task, cutoff time.Time) {
	var latest swarm.Task
	for _, task := range tasks {
		if task.Status.Timestamp.Before(cutoff) {
			continue
		}
		switch task.Status.State {
		case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned:
			if !t.failed[task.ID] {
				t.failed[task.ID] = true
				// A task that failed since the last poll restarts the
				// stability period, even when its successor already
				// runs: on a loaded node a crashing task can be
				// replaced between two polls.
				t.convergedAt = time.Time{}
			}
		}
		if task.Status.Err != "" && task.Status.Timestamp.After(latest.Status.Timestamp) {
			latest = task
		}
	}
	if latest.ID != "" {
		t.lastErr, t.lastErrNode = taskError(latest), latest.NodeID
	}
}

// failure says why the service has failed, or "" while it has not: an
// image no node has, an update Swarm paused or rolled back, or tasks that
// keep failing.
func (w *Watcher) failure(t *target, svc swarm.Service, cutoff time.Time) string {
	if t.lastErr != "" && MissingImage(t.lastErr) {
		// The engine reports a missing image only as the task's error
		// text (swarm.TaskStatus.Err is a string): there is no typed
		// error to match.
		img := svc.Spec.Labels[compose.LabelImage] + imageIfNoLabel(svc)
		return fmt.Sprintf("image %s is not on the node %s and could not be pulled (No such image); copy it from here with: microctl image push %s --all-nodes (or --to ENGINE), or deploy with --push-images",
			img, w.nodeName(t.lastErrNode), imageWithoutDigest(familiarImage(img)))
	}
	if u := svc.UpdateStatus; u != nil && t.kind.followsUpdate() && (u.StartedAt == nil || !u.StartedAt.Before(cutoff)) {
		switch u.State {
		case swarm.UpdateStatePaused:
			return joinMsg("update paused: "+u.Message, t.lastErr)
		case swarm.UpdateStateRollbackPaused:
			return joinMsg("rollback paused: "+u.Message, t.lastErr)
		case swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackCompleted:
			if t.kind == KindUpdated {
				return joinMsg("update failed and Swarm rolled it back (failure_action: rollback): "+u.Message, t.lastErr)
			}
		}
	}
	if n := len(t.failed); n >= w.opts.FailedTasks {
		return fmt.Sprintf("tasks keep failing (%d failed): %s", n, t.lastErr)
	}
	return ""
}

// MissingImage reports whether a task error says that the node has not the
// image and could not pull it.
func MissingImage(taskErr string) bool {
	return strings.Contains(taskErr, "No such image") || strings.Contains(taskErr, "pull access denied")
}

// nodeName names a node by hostname when the engine says (a real client
// can; the watch's fakes need not), else by its short ID.
func (w *Watcher) nodeName(id string) string {
	if id == "" {
		return "(unknown)"
	}
	ni, ok := w.api.(interface {
		NodeInspectWithRaw(ctx context.Context, nodeID string) (swarm.Node, []byte, error)
	})
	if ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if n, _, err := ni.NodeInspectWithRaw(ctx, id); err == nil && n.Description.Hostname != "" {
			return fmt.Sprintf("%s (%s)", n.Description.Hostname, stringid.TruncateID(id))
		}
	}
	return stringid.TruncateID(id)
}

// taskCount is what a mode evaluator counted: shown is what the progress
// line shows as done (running tasks, or completed ones for a job).
type taskCount struct {
	shown, running, complete, desired uint64
}

// modeEvaluator counts a service's tasks and settles its phase the way its
// mode defines convergence: one per service mode, chosen once when the
// watch starts, as docker/cli's progress updaters are.
type modeEvaluator interface {
	// current keeps the tasks that belong to what is being watched (a
	// job's current iteration).
	current(svc swarm.Service, tasks []swarm.Task) []swarm.Task
	count(svc swarm.Service, tasks []swarm.Task) taskCount
	// settle sets the phase of a service that has not failed.
	settle(t *target, svc swarm.Service, c taskCount, cutoff, now time.Time)
}

// evaluatorFor picks the evaluator of a spec's mode; a spec that names no
// mode is replicated, as the engine treats it.
func evaluatorFor(m swarm.ServiceMode) modeEvaluator {
	switch {
	case m.Global != nil:
		return globalMode{}
	case m.ReplicatedJob != nil:
		return replicatedJobMode{}
	case m.GlobalJob != nil:
		return globalJobMode{}
	}
	return replicatedMode{}
}

// replicatedMode: converged when the replica count runs.
type replicatedMode struct{ serviceSettle }

func (replicatedMode) current(_ swarm.Service, tasks []swarm.Task) []swarm.Task { return tasks }

func (replicatedMode) count(svc swarm.Service, tasks []swarm.Task) taskCount {
	c := tally(tasks)
	c.desired = 1
	if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		c.desired = *r.Replicas
	}
	c.shown = c.running
	return c
}

// globalMode: converged when one task runs on every eligible node.
type globalMode struct{ serviceSettle }

func (globalMode) current(_ swarm.Service, tasks []swarm.Task) []swarm.Task { return tasks }

func (globalMode) count(svc swarm.Service, tasks []swarm.Task) taskCount {
	c := tally(tasks)
	c.desired = perNode(svc, tasks)
	c.shown = c.running
	return c
}

// replicatedJobMode: completed when TotalCompletions tasks have completed.
type replicatedJobMode struct{ jobSettle }

func (replicatedJobMode) current(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	return currentIteration(svc, tasks)
}

func (replicatedJobMode) count(svc swarm.Service, tasks []swarm.Task) taskCount {
	c := tally(tasks)
	c.desired = 1
	if j := svc.Spec.Mode.ReplicatedJob; j != nil {
		switch {
		case j.TotalCompletions != nil:
			c.desired = *j.TotalCompletions
		case j.MaxConcurrent != nil:
			c.desired = *j.MaxConcurrent
		}
	}
	c.shown = c.complete
	return c
}

// globalJobMode: completed when a task has completed on every eligible node.
type globalJobMode struct{ jobSettle }

func (globalJobMode) current(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	return currentIteration(svc, tasks)
}

func (globalJobMode) count(svc swarm.Service, tasks []swarm.Task) taskCount {
	c := tally(tasks)
	c.desired = perNode(svc, tasks)
	c.shown = c.complete
	return c
}

// tally counts running and completed tasks.
func tally(tasks []swarm.Task) taskCount {
	var c taskCount
	for _, task := range tasks {
		if task.DesiredState == swarm.TaskStateRunning && task.Status.State == swarm.TaskStateRunning {
			c.running++
		}
		if task.Status.State == swarm.TaskStateComplete {
			c.complete++
		}
	}
	return c
}

// perNode is how many tasks a global service or job should have: one per
// eligible node, by the engine's count or by the nodes that have a task,
// whichever is more (an engine without ServiceStatus reports none).
func perNode(svc swarm.Service, tasks []swarm.Task) uint64 {
	nodes := map[string]bool{}
	for _, task := range tasks {
		if task.DesiredState != swarm.TaskStateShutdown && task.NodeID != "" {
			nodes[task.NodeID] = true
		}
	}
	var d uint64
	if svc.ServiceStatus != nil {
		d = svc.ServiceStatus.DesiredTasks
	}
	return max(d, uint64(len(nodes)))
}

// currentIteration drops the tasks of a job's earlier runs.
func currentIteration(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	if svc.JobStatus == nil {
		return tasks
	}
	out := tasks[:0:0]
	for _, task := range tasks {
		if task.JobIteration != nil && task.JobIteration.Index != svc.JobStatus.JobIteration.Index {
			continue
		}
		out = append(out, task)
	}
	return out
}

// jobSettle: a job is done once it has completed; there is nothing to
// watch for stability afterwards.
type jobSettle struct{}

func (jobSettle) settle(t *target, _ swarm.Service, c taskCount, _, _ time.Time) {
	if c.desired > 0 && c.complete >= c.desired || c.desired == 0 && c.complete > 0 && c.running == 0 {
		t.state.Phase, t.ready, t.state.Message = PhaseCompleted, true, ""
	}
}

// serviceSettle: a service is converged once the desired tasks run and no
// update is under way, and then stable once it has stayed so for its
// monitor period (unless Swarm already watched that period itself).
type serviceSettle struct{}

func (serviceSettle) settle(t *target, svc swarm.Service, c taskCount, cutoff, now time.Time) {
	st := &t.state
	u := svc.UpdateStatus
	updating := u != nil && (u.State == swarm.UpdateStateUpdating || u.State == swarm.UpdateStateRollbackStarted)
	if t.kind == KindRollback {
		// Our rollback request is in when the status says so.
		if u == nil || u.StartedAt == nil || u.StartedAt.Before(cutoff) || (u.State != swarm.UpdateStateRollbackCompleted && u.State != swarm.UpdateStateRollbackStarted) {
			updating = true
		}
	}
	converged := c.running == c.desired && !updating
	t.ready = c.running == c.desired && c.desired > 0 || c.desired == 0 && !updating
	if !converged {
		t.convergedAt = time.Time{}
		st.Phase = t.kind.activePhase()
		return
	}
	st.Message = ""
	// Swarm's word that an update completed stands only when no task of
	// it failed: with a short update monitor on a loaded node, a task that
	// crashes after a few seconds passes Swarm's watch, and then it is our
	// own monitor period (restarted by every failure) that decides.
	if p, final := t.kind.settledPhase(u, cutoff); final && !(t.kind == KindUpdated && len(t.failed) > 0) {
		st.Phase = p
		return
	}
	if t.convergedAt.IsZero() {
		t.convergedAt = now
	}
	left := t.monitor - now.Sub(t.convergedAt)
	if left <= 0 {
		st.Phase, st.VerifyLeft = PhaseConverged, 0
		if t.kind == KindUnchanged {
			st.Phase = PhaseUnchanged
		}
		return
	}
	st.Phase, st.VerifyLeft = PhaseVerifying, left.Round(time.Second)
}

func imageIfNoLabel(svc swarm.Service) string {
	if svc.Spec.Labels[compose.LabelImage] != "" || svc.Spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	return svc.Spec.TaskTemplate.ContainerSpec.Image
}

func joinMsg(a, b string) string {
	if b == "" || strings.Contains(a, b) {
		return a
	}
	return a + "; last task error: " + b
}

// taskError is a task's error as a person reads it: state and message.
func taskError(t swarm.Task) string {
	msg := t.Status.Err
	if msg == "" {
		msg = t.Status.Message
	}
	return fmt.Sprintf("task %s %s: %s", stringid.TruncateID(t.ID), t.Status.State, textutil.OneLine(msg))
}

// Failures lists the failed services' messages, one per service, sorted.
func Failures(states []State) []string {
	var out []string
	for _, s := range states {
		if s.Phase == PhaseFailed || s.Phase == PhaseSkipped {
			out = append(out, s.Service+": "+s.Message)
		}
	}
	sort.Strings(out)
	return out
}
