package spread

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/pkg/bench"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		total, n int
		want     []int
	}{
		{10, 3, []int{4, 3, 3}},
		{9, 3, []int{3, 3, 3}},
		{2, 3, []int{1, 1, 0}},
		{50, 1, []int{50}},
	} {
		if got := Split(tt.total, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("Split(%d,%d) = %v, want %v", tt.total, tt.n, got, tt.want)
		}
	}
	for _, tt := range []struct {
		rate float64
		n    int
	}{{1000, 3}, {1001, 3}, {333.3, 3}, {0.5, 2}, {0, 3}} {
		var sum float64
		for _, r := range SplitRate(tt.rate, tt.n) {
			sum += r
		}
		if sum != tt.rate {
			t.Errorf("SplitRate(%g,%d) sums to %g", tt.rate, tt.n, sum)
		}
	}
	if got := SplitRate(1001, 3); !slices.Equal(got, []float64{334, 334, 333}) {
		t.Errorf("SplitRate(1001,3) = %v", got)
	}
	if _, err := Divide(WorkerSpec{Connections: 2}, 3); err == nil {
		t.Error("2 connections for 3 workers: no error")
	}
	p, err := Divide(WorkerSpec{URL: "http://x/", Connections: 10, Rate: 1001}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Workers[0].Connections != 4 || p.Workers[2].Rate != 333 || p.Workers[1].Slot != 1 || p.Workers[1].URL != "http://x/" {
		t.Errorf("plan %+v", p.Workers)
	}
}

// memKV is Consul's KV in memory, with blocking reads.
type memKV struct {
	mu      sync.Mutex
	m       map[string][]byte
	index   uint64
	changed chan struct{}
	failGet error
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}, changed: make(chan struct{})} }

func (k *memKV) bump() {
	k.index++
	close(k.changed)
	k.changed = make(chan struct{})
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failGet != nil {
		return nil, false, k.failGet
	}
	v, ok := k.m[key]
	return v, ok, nil
}

func (k *memKV) Keys(_ context.Context, prefix string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for key := range k.m {
		if strings.HasPrefix(key, prefix) {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (k *memKV) Put(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = v
	k.bump()
	return nil
}

func (k *memKV) Create(_ context.Context, key string, v []byte) (bool, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; ok {
		return false, nil
	}
	k.m[key] = v
	k.bump()
	return true, nil
}

func (k *memKV) DeleteTree(_ context.Context, prefix string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for key := range k.m {
		if strings.HasPrefix(key, prefix) {
			delete(k.m, key)
		}
	}
	k.bump()
	return nil
}

func (k *memKV) Watch(ctx context.Context, key string, index uint64, wait time.Duration) ([]byte, bool, uint64, error) {
	k.mu.Lock()
	if k.index == index {
		ch := k.changed
		k.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, false, index, ctx.Err()
		}
		k.mu.Lock()
	}
	defer k.mu.Unlock()
	v, ok := k.m[key]
	return v, ok, k.index, nil
}

// fakeSwarm runs each "task" as a goroutine calling Work, with a run
// function chosen by the test (real bench.Run against a local target, or a
// failure).
type fakeSwarm struct {
	client.APIClient
	kv      KV
	run     RunFunc
	workers int // how many tasks actually start (< n: a worker never comes)
	mu      sync.Mutex
	created []swarm.ServiceSpec
	removed []string
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	failed  []swarm.Task
}

func (f *fakeSwarm) NetworkInspect(context.Context, string, network.InspectOptions) (network.Inspect, error) {
	return network.Inspect{ID: "hostnet"}, nil
}

func (f *fakeSwarm) ServiceCreate(_ context.Context, spec swarm.ServiceSpec, _ swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error) {
	f.mu.Lock()
	f.created = append(f.created, spec)
	f.mu.Unlock()
	prefix := spec.TaskTemplate.ContainerSpec.Args[3]
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	n := int(*spec.Mode.Replicated.Replicas)
	if f.workers > 0 {
		n = f.workers
	}
	for i := range n {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			_, _ = Work(ctx, f.kv, prefix, WorkerOptions{Task: fmt.Sprintf("svc.%d", i+1), Node: "n1", Run: f.run, Poll: 10 * time.Millisecond})
		}()
	}
	return swarm.ServiceCreateResponse{ID: "svc0123456789abcdef"}, nil
}

func (f *fakeSwarm) ServiceRemove(_ context.Context, id string) error {
	f.mu.Lock()
	f.removed = append(f.removed, id)
	f.mu.Unlock()
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	return nil
}

func (f *fakeSwarm) TaskList(context.Context, swarm.TaskListOptions) ([]swarm.Task, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed, nil
}

// countingTarget answers 200 to every request and counts them.
func countingTarget(t *testing.T) (string, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/", &n
}

// TestRunMergesWhatTheTargetSaw runs three in-process workers (real
// load, through the real KV protocol) and checks that the merged total is
// what the target counted, that it is the sum of the workers, and that the
// service and the prefix are removed.
func TestRunMergesWhatTheTargetSaw(t *testing.T) {
	if testing.Short() {
		t.Skip("runs load for a second (-short)")
	}
	url, seen := countingTarget(t)
	kv := newMemKV()
	fs := &fakeSwarm{kv: kv, run: bench.Run}
	plan, err := Divide(WorkerSpec{URL: url, Connections: 5, Rate: 300, Duration: time.Second, Timeout: 2 * time.Second, Loops: 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, fs, kv, plan, WithImage("mctl:test"), WithName("t"))
	if err != nil {
		t.Fatal(err)
	}
	m := rep.Merged
	var sum, sumSent uint64
	for _, w := range rep.Workers {
		sum += w.Requests
		sumSent += w.Result.Sent
	}
	// Every request sent reached the target (the ones still in flight when
	// the run stopped too, which no worker saw answered): give the last of
	// them a moment to be counted.
	for i := 0; i < 100 && seen.Load() < int64(m.Sent); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if int64(m.Sent) != seen.Load() || sumSent != m.Sent || sum != m.Requests || m.Requests == 0 || m.Requests > m.Sent {
		t.Errorf("merged %d requests (%d sent), workers %d (%d sent), the target saw %d", m.Requests, m.Sent, sum, sumSent, seen.Load())
	}
	if m.Latency.Count != int64(m.Requests) || m.Status["200"] != m.Requests {
		t.Errorf("histogram holds %d, status 200 %d, requests %d", m.Latency.Count, m.Status["200"], m.Requests)
	}
	if m.Settings.Connections != 5 || m.Settings.Rate != 300 {
		t.Errorf("settings %+v", m.Settings)
	}
	if got := []int{rep.Workers[0].Connections, rep.Workers[1].Connections, rep.Workers[2].Connections}; !slices.Equal(got, []int{2, 2, 1}) {
		t.Errorf("connections per worker %v", got)
	}
	if rep.Cleanup != "removed" || len(fs.removed) != 1 {
		t.Errorf("cleanup %q, removed %v", rep.Cleanup, fs.removed)
	}
	if keys, _ := kv.Keys(ctx, rep.Prefix); len(keys) != 0 {
		t.Errorf("left in KV: %v", keys)
	}
	spec := fs.created[0]
	if spec.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionNone || spec.TaskTemplate.Networks[0].Target != "hostnet" ||
		*spec.Mode.Replicated.Replicas != 3 {
		t.Errorf("service spec %+v", spec)
	}
}

func TestRunFailures(t *testing.T) {
	tests := []struct {
		name    string
		fs      func(kv KV) *fakeSwarm
		wantErr string
	}{
		{
			name: "a worker that never comes is named after the deadline",
			fs: func(kv KV) *fakeSwarm {
				return &fakeSwarm{kv: kv, workers: 1, run: func(context.Context, ...bench.Option) (*bench.Result, error) {
					return nil, errors.New("unreachable")
				}}
			},
			wantErr: "1 of 2 workers ready after 300ms (slots claimed: 0)",
		},
		{
			name: "a worker whose run fails says why",
			fs: func(kv KV) *fakeSwarm {
				return &fakeSwarm{kv: kv, run: func(context.Context, ...bench.Option) (*bench.Result, error) {
					return nil, errors.New("connect: connection refused")
				}}
			},
			wantErr: "failed: connect: connection refused",
		},
		{
			name: "a task that failed (no image on its node) is named before the deadline",
			fs: func(kv KV) *fakeSwarm {
				f := &fakeSwarm{kv: kv, workers: 1}
				task := swarm.Task{ID: "task0123456789", NodeID: "node0123456789", Slot: 2}
				task.Status.State, task.Status.Err = swarm.TaskStateRejected, "No such image: mctl:test"
				task.Spec.ContainerSpec = &swarm.ContainerSpec{Image: "mctl:test"}
				f.failed = []swarm.Task{task}
				return f
			},
			wantErr: "is rejected: No such image: mctl:test; copy the image to the nodes with: microctl image push mctl:test --all-nodes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kv := newMemKV()
			fs := tt.fs(kv)
			plan, _ := Divide(WorkerSpec{URL: "http://127.0.0.1:1/", Connections: 2, Duration: 100 * time.Millisecond}, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := Run(ctx, fs, kv, plan, WithImage("mctl:test"), WithReadyTimeout(300*time.Millisecond), WithResultGrace(2*time.Second))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if rep == nil || rep.Cleanup != "removed" || len(fs.removed) != 1 {
				t.Fatalf("cleanup: %+v, removed %v", rep, fs.removed)
			}
			if keys, _ := kv.Keys(ctx, "microctl/bench/"); len(keys) != 0 {
				t.Errorf("left in KV: %v", keys)
			}
		})
	}
}

// Ctrl-C during the run still removes the service and the prefix.
func TestRunCancelledCleansUp(t *testing.T) {
	kv := newMemKV()
	fs := &fakeSwarm{kv: kv, workers: 1}
	plan, _ := Divide(WorkerSpec{URL: "http://127.0.0.1:1/", Connections: 2, Duration: time.Second}, 2)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	rep, err := Run(ctx, fs, kv, plan, WithImage("mctl:test"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if rep.Cleanup != "removed" || len(fs.removed) != 1 {
		t.Errorf("cleanup %q removed %v", rep.Cleanup, fs.removed)
	}
	if keys, _ := kv.Keys(context.Background(), "microctl/bench/"); len(keys) != 0 {
		t.Errorf("left in KV: %v", keys)
	}
}
