package stack

import (
	"context"

	"fmt"
	cerrdefs "github.com/containerd/errdefs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/pkg/compose"
)

// fakeWatchEngine serves ServiceList and TaskList from in-memory state that a
// test changes between polls.
type fakeWatchEngine struct {
	client.APIClient
	mu       sync.Mutex
	services map[string]swarm.Service
	tasks    map[string][]swarm.Task
}

func (f *fakeWatchEngine) ServiceList(ctx context.Context, o swarm.ServiceListOptions) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Service
	for _, id := range o.Filters.Get("id") {
		if s, ok := f.services[id]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeWatchEngine) TaskList(ctx context.Context, o swarm.TaskListOptions) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Task
	for _, id := range o.Filters.Get("service") {
		out = append(out, f.tasks[id]...)
	}
	return out, nil
}

func (f *fakeWatchEngine) set(s swarm.Service, tasks ...swarm.Task) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[s.ID] = s
	f.tasks[s.ID] = tasks
}

func replicated(id string, n uint64, monitor time.Duration) swarm.Service {
	return swarm.Service{ID: id, Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: id, Labels: map[string]string{compose.LabelImage: "img:" + id}},
		Mode:        swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "img:" + id},
		},
		UpdateConfig: &swarm.UpdateConfig{Monitor: monitor},
	}}
}

// NodeInspectWithRaw names node n1, so that failure messages can be
// checked for the hostname; other IDs are not found.
func (f *fakeWatchEngine) NodeInspectWithRaw(_ context.Context, id string) (swarm.Node, []byte, error) {
	if id != "n1" {
		return swarm.Node{}, nil, cerrdefs.ErrNotFound
	}
	n := swarm.Node{ID: id}
	n.Description.Hostname = "worker-1"
	return n, nil, nil
}

func task(id, service string, desired, state swarm.TaskState, at time.Time, err string) swarm.Task {
	return swarm.Task{ID: id, ServiceID: service, DesiredState: desired, NodeID: "n1",
		Status: swarm.TaskStatus{State: state, Timestamp: at, Err: err}}
}

// evalOnce runs one poll over svc and its tasks at now and returns the state.
func evalOnce(t *testing.T, w *Watcher, f *fakeWatchEngine) []State {
	t.Helper()
	if err := w.poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w.States()
}

func TestWatcherPhases(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	tests := []struct {
		name    string
		kind    Kind
		svc     func() swarm.Service
		tasks   []swarm.Task
		at      time.Duration // when the poll happens, after t0
		phase   Phase
		message string
	}{
		{"created, tasks starting", KindCreated, func() swarm.Service { return replicated("a", 2, time.Second) },
			[]swarm.Task{task("t1", "a", run, run, t0, ""), task("t2", "a", run, swarm.TaskStateStarting, t0, "")}, 0, PhaseStarting, ""},
		{"created, all running: verify for the monitor period", KindCreated, func() swarm.Service { return replicated("a", 2, time.Second) },
			[]swarm.Task{task("t1", "a", run, run, t0, ""), task("t2", "a", run, run, t0, "")}, 0, PhaseVerifying, ""},
		{"unchanged and running: verify for the monitor period too", KindUnchanged, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("t1", "a", run, run, t0.Add(-time.Hour), "")}, 0, PhaseVerifying, ""},
		{"old failures of an unchanged service do not count", KindUnchanged, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("t1", "a", run, run, t0, ""), task("f1", "a", shut, swarm.TaskStateFailed, t0.Add(-time.Hour), "boom"),
				task("f2", "a", shut, swarm.TaskStateFailed, t0.Add(-time.Hour), "boom"), task("f3", "a", shut, swarm.TaskStateFailed, t0.Add(-time.Hour), "boom")}, 0, PhaseVerifying, ""},
		{"tasks keep failing", KindCreated, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("f1", "a", shut, swarm.TaskStateFailed, t0.Add(time.Second), "task: non-zero exit (1)"),
				task("f2", "a", shut, swarm.TaskStateFailed, t0.Add(2*time.Second), "task: non-zero exit (1)"),
				task("f3", "a", shut, swarm.TaskStateFailed, t0.Add(3*time.Second), "task: non-zero exit (1)")}, 3 * time.Second,
			PhaseFailed, "tasks keep failing (3 failed): task f3 failed: task: non-zero exit (1)"},
		{"no such image fails at once", KindCreated, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("r1", "a", shut, swarm.TaskStateRejected, t0.Add(time.Second), "No such image: img:a")}, time.Second,
			PhaseFailed, "image img:a is not on the node worker-1 (n1) and could not be pulled (No such image); copy it from here with: microctl image push img:a --all-nodes (or --to ENGINE), or deploy with --push-images"},
		{"update paused", KindUpdated, func() swarm.Service {
			s := replicated("a", 1, time.Second)
			at := t0.Add(time.Second)
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, StartedAt: &at, Message: "update paused due to failure of task x"}
			return s
		}, []swarm.Task{task("f1", "a", shut, swarm.TaskStateFailed, t0.Add(2*time.Second), "task: non-zero exit (1)")}, 3 * time.Second,
			PhaseFailed, "update paused: update paused due to failure of task x; last task error: task f1 failed: task: non-zero exit (1)"},
		{"a paused status from an earlier update is not ours", KindUpdated, func() swarm.Service {
			s := replicated("a", 1, time.Second)
			at := t0.Add(-time.Hour)
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, StartedAt: &at}
			return s
		}, nil, 0, PhaseUpdating, ""},
		{"update in progress", KindUpdated, func() swarm.Service {
			s := replicated("a", 1, time.Second)
			at := t0.Add(time.Second)
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &at}
			return s
		}, []swarm.Task{task("t1", "a", run, run, t0.Add(2*time.Second), "")}, 2 * time.Second, PhaseUpdating, ""},
		{"update completed: Swarm monitored it already", KindUpdated, func() swarm.Service {
			s := replicated("a", 1, time.Minute)
			at := t0.Add(time.Second)
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &at}
			return s
		}, []swarm.Task{task("t1", "a", run, run, t0.Add(2*time.Second), "")}, 2 * time.Second, PhaseConverged, ""},
		{"Swarm rolled our update back", KindUpdated, func() swarm.Service {
			s := replicated("a", 1, time.Second)
			at := t0.Add(time.Second)
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: &at, Message: "rollback completed"}
			return s
		}, []swarm.Task{task("t1", "a", run, run, t0.Add(2*time.Second), "")}, 2 * time.Second,
			PhaseFailed, "update failed and Swarm rolled it back (failure_action: rollback): rollback completed"},
		{"our rollback completed", KindRollback, func() swarm.Service {
			s := replicated("a", 1, time.Second)
			at := t0.Add(time.Second)
			s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: &at}
			return s
		}, []swarm.Task{task("t1", "a", run, run, t0.Add(2*time.Second), "")}, 2 * time.Second, PhaseRolledBack, ""},
		{"job completed", KindCreated, func() swarm.Service {
			one := uint64(1)
			return swarm.Service{ID: "j", Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}}}
		}, []swarm.Task{task("t1", "j", swarm.TaskStateComplete, swarm.TaskStateComplete, t0.Add(time.Second), "")}, time.Second, PhaseCompleted, ""},
		{"global service: one task per node", KindCreated, func() swarm.Service {
			return swarm.Service{ID: "g", Spec: swarm.ServiceSpec{Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}}},
				ServiceStatus: &swarm.ServiceStatus{DesiredTasks: 2}}
		}, []swarm.Task{task("t1", "g", run, run, t0, "")}, 0, PhaseStarting, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
			svc := tt.svc()
			f.set(svc, tt.tasks...)
			w := NewWatcher(f, WatchOptions{})
			now := t0
			w.now = func() time.Time { return now }
			w.Watch(svc.ID, svc.ID, tt.kind, svc.Spec)
			now = t0.Add(tt.at)
			st := evalOnce(t, w, f)[0]
			if st.Phase != tt.phase {
				t.Errorf("phase %s, want %s (message %q)", st.Phase, tt.phase, st.Message)
			}
			if tt.message != "" && !strings.HasPrefix(st.Message, tt.message) {
				t.Errorf("message %q, want it to start with %q", st.Message, tt.message)
			}
		})
	}
}

// TestWatcherVerifiesStability: a new service counts only after it has
// stayed converged for its monitor period, and a task failure in between
// starts the period again.
func TestWatcherVerifiesStability(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run := swarm.TaskStateRunning
	f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
	svc := replicated("a", 1, 2*time.Second)
	f.set(svc, task("t1", "a", run, run, t0, ""))
	w := NewWatcher(f, WatchOptions{})
	now := t0
	w.now = func() time.Time { return now }
	w.Watch("a", "a", KindCreated, svc.Spec)

	step := func(at time.Duration, want Phase) {
		t.Helper()
		now = t0.Add(at)
		if st := evalOnce(t, w, f)[0]; st.Phase != want {
			t.Fatalf("at %s: phase %s, want %s", at, st.Phase, want)
		}
	}
	step(0, PhaseVerifying)
	step(time.Second, PhaseVerifying)
	f.set(svc, task("t1", "a", swarm.TaskStateShutdown, swarm.TaskStateFailed, t0.Add(1500*time.Millisecond), "crashed"),
		task("t2", "a", run, swarm.TaskStateStarting, t0.Add(1500*time.Millisecond), ""))
	step(1500*time.Millisecond, PhaseStarting)
	f.set(svc, task("t2", "a", run, run, t0.Add(2*time.Second), ""))
	step(2*time.Second, PhaseVerifying)
	step(3500*time.Millisecond, PhaseVerifying)
	step(4*time.Second, PhaseConverged)
}

// TestWatcherUnchangedNeedsStability: a service the plan left unchanged is
// "unchanged" only once seen running for its monitor period; one that
// crash-loops (its task up at one poll, failed at the next) is not, and
// fails when its tasks keep failing (issue 10: unchanged but 0/1 is not
// converged).
func TestWatcherUnchangedNeedsStability(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	svc := replicated("a", 1, 2*time.Second)
	for _, crash := range []bool{false, true} {
		f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
		f.set(svc, task("t1", "a", run, run, t0.Add(-time.Hour), ""))
		w := NewWatcher(f, WatchOptions{})
		now := t0
		w.now = func() time.Time { return now }
		w.WatchSince("a", "a", KindUnchanged, svc.Spec, t0)
		step := func(at time.Duration, want Phase, tasks ...swarm.Task) {
			t.Helper()
			now = t0.Add(at)
			if tasks != nil {
				f.set(svc, tasks...)
			}
			if st := evalOnce(t, w, f)[0]; st.Phase != want {
				t.Fatalf("crash=%v at %s: phase %s (%s), want %s", crash, at, st.Phase, st.Message, want)
			}
		}
		step(0, PhaseVerifying)
		if !crash {
			step(2*time.Second, PhaseUnchanged)
			continue
		}
		var failed []swarm.Task
		for i := range 3 {
			at := time.Duration(i+1) * time.Second
			failed = append(failed, task(fmt.Sprintf("f%d", i), "a", shut, swarm.TaskStateFailed, t0.Add(at), "boom"))
			want := PhaseStarting
			if i == 2 {
				want = PhaseFailed
			}
			step(at, want, append(slices.Clone(failed), task(fmt.Sprintf("n%d", i), "a", run, swarm.TaskStateStarting, t0.Add(at), ""))...)
		}
	}
}

// TestWatcherGate: a gated service counts only when Swarm and the gate
// agree; a failure the gate sees fails it.
func TestWatcherGate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run := swarm.TaskStateRunning
	svc := replicated("a", 1, time.Second)
	g := &fakeGate{}
	f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
	f.set(svc, task("t1", "a", run, run, t0, ""))
	w := NewWatcher(f, WatchOptions{Gate: g})
	now := t0
	w.now = func() time.Time { return now }
	w.SetGated("a", true)
	w.Watch("a", "a", KindCreated, svc.Spec)
	step := func(at time.Duration, gs GateState, want Phase, msg string) {
		t.Helper()
		now, g.state = t0.Add(at), gs
		st := evalOnce(t, w, f)[0]
		if st.Phase != want || !strings.Contains(st.Message, msg) {
			t.Fatalf("at %s: %s %q, want %s %q", at, st.Phase, st.Message, want, msg)
		}
	}
	step(0, GateState{Message: "not registered yet"}, PhaseVerifying, "")
	// Swarm is done after its monitor period; the gate is not.
	step(2*time.Second, GateState{Message: "g-1 passing for 1s of 10s"}, PhaseVerifying, "mesh: g-1 passing for 1s of 10s")
	step(3*time.Second, GateState{Converged: true}, PhaseConverged, "")

	// A failure the gate sees fails the service at once.
	w2 := NewWatcher(f, WatchOptions{Gate: g})
	w2.now = func() time.Time { return now }
	w2.SetGated("a", true)
	w2.Watch("a", "a", KindCreated, svc.Spec)
	g.state = GateState{Failed: true, Message: "1 new task ran, none registered in Consul s within 30s"}
	if st := evalOnce(t, w2, f)[0]; st.Phase != PhaseFailed || !strings.Contains(st.Message, "none registered") {
		t.Fatalf("gate failure: %+v", st)
	}
	// A gate that gives up (Off) leaves the service to Swarm.
	w3 := NewWatcher(f, WatchOptions{Gate: g})
	now = t0
	w3.now = func() time.Time { return now }
	w3.SetGated("a", true)
	w3.Watch("a", "a", KindCreated, svc.Spec)
	g.state = GateState{Off: true}
	evalOnce(t, w3, f)
	now = t0.Add(2 * time.Second)
	if st := evalOnce(t, w3, f)[0]; st.Phase != PhaseConverged {
		t.Fatalf("gate off: %+v", st)
	}
}

type fakeGate struct{ state GateState }

func (g *fakeGate) Check(context.Context, string, string) GateState { return g.state }

// TestWatcherTimeout: when the deadline passes, what is still going fails
// with what it was doing.
func TestWatcherTimeout(t *testing.T) {
	f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
	svc := replicated("a", 2, time.Second)
	f.set(svc, task("t1", "a", swarm.TaskStateRunning, swarm.TaskStatePending, time.Now(), "no suitable node (host-mode port already in use on 1 node)"))
	w := NewWatcher(f, WatchOptions{Interval: 10 * time.Millisecond})
	w.Watch("a", "a", KindCreated, svc.Spec)
	w.Expect("b", PhaseWaiting, "for a")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := w.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	st := w.States()
	if st[0].Phase != PhaseFailed || !strings.Contains(st[0].Message, "timed out while starting (0/2 running)") ||
		!strings.Contains(st[0].Message, "host-mode port already in use") {
		t.Errorf("a: %+v", st[0])
	}
	if st[1].Phase != PhaseFailed || st[1].Message != "timed out waiting for its dependencies" {
		t.Errorf("b: %+v", st[1])
	}
}

// TestWaitReady: a dependent is released when its dependency runs, and
// told when it failed.
func TestWaitReady(t *testing.T) {
	w := NewWatcher(&fakeWatchEngine{}, WatchOptions{})
	w.Expect("db", PhaseStarting, "")
	w.Expect("cache", PhaseStarting, "")
	errc := make(chan error, 2)
	go func() { errc <- w.WaitReady(context.Background(), "db") }()
	go func() { errc <- w.WaitReady(context.Background(), "cache") }()
	w.Finish("db", PhaseConverged, "")
	w.Finish("cache", PhaseFailed, "tasks keep failing")
	var okN, failN int
	for range 2 {
		if err := <-errc; err == nil {
			okN++
		} else if strings.Contains(err.Error(), "cache: tasks keep failing") {
			failN++
		}
	}
	if okN != 1 || failN != 1 {
		t.Errorf("ok %d, failed %d", okN, failN)
	}
	if err := w.WaitReady(context.Background(), "nope"); err == nil {
		t.Error("waiting for an unknown service returned nil")
	}
}

// TestWatcherServiceAddedDuringPoll: a service whose deploy finishes while
// a poll reads the engine and the gate (the gate's reads are slow) was not
// asked about in that poll; it must not be taken for removed.
func TestWatcherServiceAddedDuringPoll(t *testing.T) {
	run := swarm.TaskStateRunning
	t0 := time.Now()
	f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
	a, b := replicated("a", 1, time.Second), replicated("b", 1, time.Second)
	f.set(a, task("ta", "a", run, run, t0, ""))
	f.set(b, task("tb", "b", run, run, t0, ""))
	g := &hookGate{}
	w := NewWatcher(f, WatchOptions{Gate: g})
	w.SetGated("a", true)
	w.Watch("a", "a", KindCreated, a.Spec)
	g.hook = func() { w.Watch("b", "b", KindUpdated, b.Spec) }
	for _, st := range evalOnce(t, w, f) {
		if st.Phase == PhaseFailed {
			t.Errorf("%s: %s (%s)", st.Service, st.Phase, st.Message)
		}
	}
}

type hookGate struct{ hook func() }

func (g *hookGate) Check(context.Context, string, string) GateState {
	if g.hook != nil {
		g.hook()
		g.hook = nil
	}
	return GateState{Message: "waiting"}
}

// TestWatcherUpdateCompletedAfterAFailure: Swarm calls an update completed
// once a new task outlived its (short) monitor; if a task of that update
// failed on the way, microctl does not take Swarm's word for it but
// watches its own monitor period, which every further failure restarts.
// Seen on a loaded node: a crashing image that took seconds to exit was
// reported converged.
func TestWatcherUpdateCompletedAfterAFailure(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	run, shut := swarm.TaskStateRunning, swarm.TaskStateShutdown
	svc := replicated("a", 1, 2*time.Second)
	started := t0
	svc.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &started}
	for _, crashAgain := range []bool{false, true} {
		f := &fakeWatchEngine{services: map[string]swarm.Service{}, tasks: map[string][]swarm.Task{}}
		failed := task("f1", "a", shut, swarm.TaskStateFailed, t0.Add(time.Second), "task: non-zero exit (1)")
		f.set(svc, failed, task("n1", "a", run, run, t0.Add(time.Second), ""))
		w := NewWatcher(f, WatchOptions{})
		now := t0.Add(time.Second)
		w.now = func() time.Time { return now }
		w.WatchSince("a", "a", KindUpdated, svc.Spec, t0)
		if st := evalOnce(t, w, f)[0]; st.Phase != PhaseVerifying {
			t.Fatalf("crashAgain=%v: right after a failed task, phase %s, want %s", crashAgain, st.Phase, PhaseVerifying)
		}
		if crashAgain {
			now = t0.Add(2 * time.Second)
			f.set(svc, failed, task("f2", "a", shut, swarm.TaskStateFailed, now, "task: non-zero exit (1)"),
				task("n2", "a", run, run, now, ""))
			if st := evalOnce(t, w, f)[0]; st.Phase == PhaseConverged {
				t.Fatalf("a second failure still converged")
			}
			now = t0.Add(3500 * time.Millisecond) // 1.5 s after the last failure: within the monitor
			if st := evalOnce(t, w, f)[0]; st.Phase != PhaseVerifying {
				t.Fatalf("within the monitor after the last failure: phase %s", st.Phase)
			}
			continue
		}
		now = t0.Add(3500 * time.Millisecond) // the monitor period passed with no failure
		if st := evalOnce(t, w, f)[0]; st.Phase != PhaseConverged {
			t.Fatalf("after a quiet monitor period: phase %s (%s), want %s", st.Phase, st.Message, PhaseConverged)
		}
	}
}
