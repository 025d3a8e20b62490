package health

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// clock is a fake clock that sleeping advances.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func catalogOf(instances []registry.ServiceInstance, nodeChecks ...registry.Check) *registry.Catalog {
	cat := &registry.Catalog{Nodes: []registry.Node{{Name: "n1", Address: "10.0.0.1", Checks: nodeChecks}}, Instances: instances}
	return cat
}

func svc(id, name, status string) registry.ServiceInstance {
	return registry.ServiceInstance{ID: id, Service: name, Node: "n1", NodeAddress: "10.0.0.1", Address: "10.0.1.9", Port: 8080,
		Tags: []string{registry.EncodeVersion("1.0")}, Meta: map[string]string{registry.MetaRegisterTTL: "5s"},
		Checks: []registry.Check{{Node: "n1", CheckID: "service:" + id, ServiceID: id, ServiceName: name, Status: status, Type: "ttl"}}}
}

type recorder struct{ events []Event }

func (r *recorder) emit(e Event) { r.events = append(r.events, e) }

func (r *recorder) kinds() []string {
	var out []string
	for _, e := range r.events {
		s := e.Type + " " + e.Instance
		if e.Type == EventTransition {
			s += " " + e.From + "->" + e.To
		}
		out = append(out, s)
	}
	r.events = nil
	return out
}

func TestDiffEvents(t *testing.T) {
	clk := newClock()
	w := NewWatcher(nil, WatchOptions{Now: clk.Now, FlapTransitions: 3, FlapWindow: time.Minute})
	serf := registry.Check{Node: "n1", CheckID: "serfHealth", Status: "passing"}
	cur := viewOf(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "passing")}, serf))
	// As Run does at the start: states already there began before the watch.
	trk := map[string]*tracked{}
	for k, c := range cur.checks {
		trk["c:"+k] = &tracked{status: c.Status, since: clk.Now()}
	}
	for k := range cur.instances {
		trk["i:"+k] = &tracked{status: "passing", since: clk.Now()}
	}
	var r recorder
	step := func(cat *registry.Catalog, d time.Duration) {
		clk.Advance(d)
		next := viewOf(cat)
		w.diff(cur, next, trk, r.emit)
		cur = next
	}

	step(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "critical")}, serf), 7*time.Second)
	if got := r.events; len(got) != 1 || got[0].Type != EventTransition || got[0].From != "passing" || got[0].To != "critical" ||
		got[0].PreviousFor == nil || *got[0].PreviousFor != 7 || !got[0].PreviousAtLeast || got[0].Status != "critical" || got[0].Kind != "ttl" {
		t.Fatalf("first transition = %+v", got)
	}
	r.kinds()

	// A new instance; the first one recovers 3s after it failed: that
	// time is measured, not a lower bound.
	step(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "passing"), svc("b-1", "b", "critical")}, serf), 3*time.Second)
	if r.events[1].Type != EventTransition || *r.events[1].PreviousFor != 3 || r.events[1].PreviousAtLeast {
		t.Errorf("recovery = %+v", r.events[1])
	}
	if got := r.kinds(); !slices.Equal(got, []string{"registered b-1", "transition a-1 critical->passing"}) {
		t.Errorf("events = %v", got)
	}

	// Third transition within the minute: flapping, reported once.
	step(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "critical"), svc("b-1", "b", "critical")}, serf), time.Second)
	if got := r.kinds(); !slices.Equal(got, []string{"transition a-1 passing->critical", "flapping a-1"}) {
		t.Errorf("events = %v", got)
	}
	step(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "passing"), svc("b-1", "b", "critical")}, serf), time.Second)
	if got := r.kinds(); !slices.Equal(got, []string{"transition a-1 critical->passing"}) {
		t.Errorf("flapping reported twice in one episode: %v", got)
	}

	// A node check transition, a deregistration with its time in state.
	serfDown := serf
	serfDown.Status = "critical"
	step(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "passing")}, serfDown), 4*time.Second)
	got := r.events
	if len(got) != 2 || got[0].Type != EventDeregistered || got[0].Instance != "b-1" || got[0].Status != "critical" ||
		*got[0].PreviousFor != 6 || got[0].PreviousAtLeast {
		t.Errorf("deregistration = %+v", got)
	}
	if len(got) == 2 && (got[1].Type != EventTransition || got[1].Instance != "" || got[1].Check != "serfHealth" || got[1].Kind != "serf") {
		t.Errorf("node check transition = %+v", got[1])
	}
	r.kinds()

	// A check added to and removed from an instance that stays.
	extra := svc("a-1", "a", "passing")
	extra.Checks = append(extra.Checks, registry.Check{Node: "n1", CheckID: "http", ServiceID: "a-1", Status: "warning", Type: "http"})
	step(catalogOf([]registry.ServiceInstance{extra}, serfDown), time.Second)
	step(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "passing")}, serfDown), time.Second)
	if got := r.kinds(); !slices.Equal(got, []string{"check_added a-1", "check_removed a-1"}) {
		t.Errorf("events = %v", got)
	}
}

func TestDiffRespectsTheServiceFilter(t *testing.T) {
	w := NewWatcher(nil, WatchOptions{Services: []string{"a"}})
	var r recorder
	old := viewOf(catalogOf(nil))
	w.diff(old, viewOf(catalogOf([]registry.ServiceInstance{svc("a-1", "a", "passing"), svc("b-1", "b", "passing")})), map[string]*tracked{}, r.emit)
	if got := r.kinds(); !slices.Equal(got, []string{"registered a-1"}) {
		t.Errorf("events = %v", got)
	}
}

func TestFlapWindowSlides(t *testing.T) {
	clk := newClock()
	w := NewWatcher(nil, WatchOptions{Now: clk.Now, FlapTransitions: 3, FlapWindow: 10 * time.Second})
	tr := &tracked{}
	var flagged []int
	for i := range 8 {
		// Transitions 6s apart: never 3 within 10s.
		if w.flap(tr, clk.Now()) != nil {
			flagged = append(flagged, i)
		}
		clk.Advance(6 * time.Second)
	}
	if len(flagged) != 0 {
		t.Errorf("slow changes reported as flapping at %v", flagged)
	}
	for i := range 6 {
		if w.flap(tr, clk.Now()) != nil {
			flagged = append(flagged, i)
		}
		clk.Advance(time.Second)
	}
	if !slices.Equal(flagged, []int{1}) {
		t.Errorf("flapping reported at %v, want once, at the third quick transition", flagged)
	}
}

// fakeConsul answers the watcher's endpoints at once, never blocking: the
// worst case for a busy loop. Blocking requests (those with a wait) get
// index(n), n counting that endpoint's blocking requests; plain reads
// (the watcher's catalog reads) get catalogIndex.
type fakeConsul struct {
	checks, services atomic.Int64 // blocking requests
	mu               sync.Mutex
	checkIndexes     []string // the index= each blocking checks request carried
	index            func(n int64) uint64
	catalogIndex     uint64
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	blocking := r.URL.Query().Has("wait")
	index := f.catalogIndex
	var body any
	switch r.URL.Path {
	case "/v1/health/state/any":
		body = []any{}
		if blocking {
			index = f.index(f.checks.Add(1))
			f.mu.Lock()
			f.checkIndexes = append(f.checkIndexes, r.URL.Query().Get("index"))
			f.mu.Unlock()
		}
	case "/v1/catalog/services":
		body = map[string][]string{}
		if blocking {
			index = f.index(f.services.Add(1))
		}
	case "/v1/catalog/nodes":
		body = []any{}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(index, 10))
	w.Header().Set("X-Consul-LastContact", "0")
	_ = json.NewEncoder(w).Encode(body)
}

func fakeClient(t *testing.T, h http.Handler) *registry.Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := api.DefaultConfig()
	cfg.Address = srv.Listener.Addr().String()
	cfg.Token, cfg.TokenFile = "", ""
	c, err := registry.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sleepRecorder is a Sleep that records how long each loop was asked to
// wait and returns at once. The clock stands still, so a loop that meant
// to wait must ask for all of MinInterval.
type sleepRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleepRecorder) Sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		s.mu.Lock()
		s.waits = append(s.waits, d)
		s.mu.Unlock()
	}
	time.Sleep(time.Millisecond) // let the other loop and Run's select breathe
	return ctx.Err()
}

func runUntil(t *testing.T, w *Watcher, done func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx, func(Event) {}) }()
	deadline := time.After(30 * time.Second)
	for !done() {
		select {
		case err := <-errc:
			t.Fatalf("watch ended early: %v", err)
		case <-deadline:
			cancel()
			t.Fatal("condition not reached")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run returned %v after cancel, want nil", err)
	}
}

// TestNoBusyLoop: a Consul (or a proxy) that answers every blocking query
// at once with the same index must not be hammered. Every request after
// the first waits out MinInterval; the fake clock makes that exact.
func TestNoBusyLoop(t *testing.T) {
	f := &fakeConsul{index: func(int64) uint64 { return 42 }, catalogIndex: 42}
	c := fakeClient(t, f)
	clk := newClock()
	sr := &sleepRecorder{}
	w := NewWatcher(c, WatchOptions{MinInterval: time.Second, Now: clk.Now, Sleep: sr.Sleep})
	runUntil(t, w, func() bool { return f.checks.Load() >= 20 && f.services.Load() >= 20 })

	// Each loop's requests after its first were each preceded by a wait
	// of MinInterval (the clock stands still, so the whole second).
	sr.mu.Lock()
	defer sr.mu.Unlock()
	loopRequests := f.checks.Load() + f.services.Load() - 2 // each loop's first request does not wait
	if int64(len(sr.waits)) < loopRequests {
		t.Fatalf("%d blocking requests but only %d waits: a busy loop", loopRequests, len(sr.waits))
	}
	for _, d := range sr.waits {
		if d < time.Second {
			t.Fatalf("waited %s between requests, want MinInterval (1s)", d)
		}
	}
	// Unchanged index: the same index is sent back, every time.
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, idx := range f.checkIndexes {
		if idx != "42" {
			t.Fatalf("request %d carried index=%s, want 42", i+1, idx)
		}
	}
}

// TestIndexGoingBackwardsResets: Consul's rule: when the index goes
// backwards, start again from 0; an index of 0 is answered with 1.
func TestIndexGoingBackwardsResets(t *testing.T) {
	seq := []uint64{120, 50, 60, 0, 70}
	f := &fakeConsul{catalogIndex: 100, index: func(n int64) uint64 {
		if int(n) <= len(seq) {
			return seq[n-1]
		}
		return 70
	}}
	c := fakeClient(t, f)
	clk := newClock()
	w := NewWatcher(c, WatchOptions{MinInterval: time.Millisecond, Now: clk.Now, Sleep: (&sleepRecorder{}).Sleep})
	runUntil(t, w, func() bool { return f.checks.Load() >= 7 })
	f.mu.Lock()
	defer f.mu.Unlock()
	// The loop starts from the catalog read's index (100); then each
	// request carries the index the previous response set: 120; 50 < 120
	// resets to 0 (sent as no index at all); 60; 0 is answered with 1; 70.
	want := []string{"100", "120", "", "60", "1", "70", "70"}
	if got := f.checkIndexes[:7]; !slices.Equal(got, want) {
		t.Errorf("indexes sent = %q, want %q", got, want)
	}
}

// TestBackoffOnErrors: failures back off, doubling with jitter up to the
// cap, and are reported; the watch goes on.
func TestBackoffOnErrors(t *testing.T) {
	f := &fakeConsul{index: func(int64) uint64 { return 7 }, catalogIndex: 7}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/health/state/any" && r.URL.Query().Has("wait") {
			http.Error(w, "rpc error: No cluster leader", http.StatusInternalServerError)
			return
		}
		f.ServeHTTP(w, r)
	})
	c := fakeClient(t, h)
	clk := newClock()
	sr := &sleepRecorder{}
	var mu sync.Mutex
	var retries []time.Duration
	w := NewWatcher(c, WatchOptions{MinInterval: time.Millisecond, BackoffMin: time.Second, BackoffMax: 16 * time.Second,
		Now: clk.Now, Sleep: sr.Sleep, OnError: func(err error, d time.Duration) {
			mu.Lock()
			retries = append(retries, d)
			mu.Unlock()
		}})
	runUntil(t, w, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(retries) >= 8
	})
	mu.Lock()
	defer mu.Unlock()
	for i, d := range retries[:8] {
		base := min(time.Second<<i, 16*time.Second)
		if d < base/2 || d > base {
			t.Errorf("retry %d after %s, want within [%s, %s]", i, d, base/2, base)
		}
	}
}

func TestBackoffJitters(t *testing.T) {
	w := NewWatcher(nil, WatchOptions{BackoffMin: time.Second, BackoffMax: time.Minute})
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[w.backoff(3)] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 backoffs gave only %d distinct waits: no jitter", len(seen))
	}
}
