package stack

import (
	"context"
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
		{"unchanged and running", KindUnchanged, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("t1", "a", run, run, t0.Add(-time.Hour), "")}, 0, PhaseUnchanged, ""},
		{"old failures of an unchanged service do not count", KindUnchanged, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("t1", "a", run, run, t0, ""), task("f1", "a", shut, swarm.TaskStateFailed, t0.Add(-time.Hour), "boom"),
				task("f2", "a", shut, swarm.TaskStateFailed, t0.Add(-time.Hour), "boom"), task("f3", "a", shut, swarm.TaskStateFailed, t0.Add(-time.Hour), "boom")}, 0, PhaseUnchanged, ""},
		{"tasks keep failing", KindCreated, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("f1", "a", shut, swarm.TaskStateFailed, t0.Add(time.Second), "task: non-zero exit (1)"),
				task("f2", "a", shut, swarm.TaskStateFailed, t0.Add(2*time.Second), "task: non-zero exit (1)"),
				task("f3", "a", shut, swarm.TaskStateFailed, t0.Add(3*time.Second), "task: non-zero exit (1)")}, 3 * time.Second,
			PhaseFailed, "tasks keep failing (3 failed): task f3 failed: task: non-zero exit (1)"},
		{"no such image fails at once", KindCreated, func() swarm.Service { return replicated("a", 1, time.Second) },
			[]swarm.Task{task("r1", "a", shut, swarm.TaskStateRejected, t0.Add(time.Second), "No such image: img:a")}, time.Second,
			PhaseFailed, "image img:a is not on the node and could not be pulled (No such image)"},
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
