package hooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/health/hooks"
	"github.com/microctl/microctl/pkg/registry"
)

func TestWants(t *testing.T) {
	tr := func(to string) health.Event {
		return health.Event{Type: health.EventTransition, From: "passing", To: to}
	}
	for _, tc := range []struct {
		name string
		on   []string
		e    health.Event
		want bool
	}{
		{"no filter", nil, tr("passing"), true},
		{"critical transition", []string{"critical"}, tr("critical"), true},
		{"recovery is not critical", []string{"critical"}, tr("passing"), false},
		{"registered critical", []string{"critical"}, health.Event{Type: health.EventRegistered, Status: "critical"}, true},
		{"deregistered", []string{"critical", "deregistered"}, health.Event{Type: health.EventDeregistered, Status: "passing"}, true},
		{"deregistered not asked", []string{"critical", "flapping"}, health.Event{Type: health.EventDeregistered, Status: "critical"}, false},
		{"flapping", []string{"flapping"}, health.Event{Type: health.EventFlapping, To: "passing"}, true},
		{"check removed is no status", []string{"critical"}, health.Event{Type: health.EventCheckRemoved, From: "critical"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hooks.Wants(tc.on, tc.e); got != tc.want {
				t.Errorf("Wants(%v, %+v) = %v", tc.on, tc.e, got)
			}
		})
	}
}

type failures struct {
	mu  sync.Mutex
	got []hooks.Failure
}

func (f *failures) add(x hooks.Failure) { f.mu.Lock(); f.got = append(f.got, x); f.mu.Unlock() }
func (f *failures) list() []hooks.Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]hooks.Failure(nil), f.got...)
}

var sample = health.Event{Time: time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC), Type: health.EventTransition,
	Service: "greeter", Instance: "greeter-1", Node: "n1", Check: "service:greeter-1", Kind: "ttl", From: "passing", To: "critical", Status: "critical"}

// TestExecGetsJSONAndEnv: the command reads the event's JSON on stdin and
// the MICROCTL_EVENT_* variables.
func TestExecGetsJSONAndEnv(t *testing.T) {
	dir := t.TempDir()
	var fl failures
	d := hooks.New(hooks.WithExec(`cat > "$OUT/event.json"; echo "$MICROCTL_EVENT_TYPE $MICROCTL_EVENT_SERVICE $MICROCTL_EVENT_TO" > "$OUT/env"`),
		hooks.WithOnFailure(fl.add))
	t.Setenv("OUT", dir)
	d.Handle(sample)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f := fl.list(); len(f) > 0 {
		t.Fatalf("failures: %v", f)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got health.Event
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("stdin is not the event's JSON: %v: %s", err, raw)
	}
	if got.Instance != sample.Instance || got.To != "critical" || !got.Time.Equal(sample.Time) {
		t.Errorf("stdin event = %+v", got)
	}
	env, _ := os.ReadFile(filepath.Join(dir, "env"))
	if strings.TrimSpace(string(env)) != "transition greeter critical" {
		t.Errorf("env = %q", env)
	}
}

// TestSlowHookNeverBlocks: a hook that outlives its timeout is killed and
// reported; Handle returns at once however slow the hooks are, and events
// beyond the queue are dropped and reported, not waited for.
func TestSlowHookNeverBlocks(t *testing.T) {
	var fl failures
	d := hooks.New(hooks.WithExec("sleep 30"), hooks.WithTimeout(300*time.Millisecond),
		hooks.WithConcurrency(1), hooks.WithQueue(1), hooks.WithOnFailure(fl.add))
	returned := make(chan struct{})
	go func() {
		for range 5 {
			d.Handle(sample)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(20 * time.Second): // far below 5 x 30 s: Handle did not wait for a hook
		t.Fatal("Handle blocked behind a slow hook")
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var timedOut, dropped int
	for _, f := range fl.list() {
		switch {
		case errors.Is(f.Err, hooks.ErrDropped):
			dropped++
		case strings.Contains(f.Err.Error(), "timed out"):
			timedOut++
		default:
			t.Errorf("unexpected failure: %v", f)
		}
	}
	// One worker and one queue slot: at most two ran (one taken by the
	// worker, one waiting); at least three found the queue full. Whether
	// the worker took the first before the second came is up to the
	// scheduler.
	if timedOut+dropped != 5 || timedOut < 1 || timedOut > 2 || dropped < 3 {
		t.Errorf("timed out %d, dropped %d; want 5 reported: 1-2 run and timed out, the rest dropped", timedOut, dropped)
	}
}

// TestWebhookRetries: 5xx are retried with back-off until success; 4xx
// are not retried.
func TestWebhookRetries(t *testing.T) {
	var calls atomic.Int32
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		body.Store(string(b))
		switch {
		case r.URL.Path == "/reject":
			http.Error(w, "no such hook", http.StatusNotFound)
		case n < 3:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	var fl failures
	d := hooks.New(hooks.WithWebhook(srv.URL+"/alert"), hooks.WithRetries(3, 10*time.Millisecond, 50*time.Millisecond), hooks.WithOnFailure(fl.add))
	d.Handle(sample)
	_ = d.Close(context.Background())
	if f := fl.list(); len(f) > 0 || calls.Load() != 3 {
		t.Fatalf("%d calls, failures %v; want success at the third", calls.Load(), f)
	}
	var got health.Event
	if err := json.Unmarshal([]byte(body.Load().(string)), &got); err != nil || got.Check != sample.Check {
		t.Errorf("webhook body %q (%v)", body.Load(), err)
	}

	calls.Store(10)
	d = hooks.New(hooks.WithWebhook(srv.URL+"/reject"), hooks.WithRetries(3, 10*time.Millisecond, 50*time.Millisecond), hooks.WithOnFailure(fl.add))
	d.Handle(sample)
	_ = d.Close(context.Background())
	f := fl.list()
	if len(f) != 1 || f[0].Attempts != 1 || !strings.Contains(f[0].Error(), "404") || calls.Load() != 11 {
		t.Errorf("a 404 must fail once, unretried: %d calls, %v", calls.Load()-10, f)
	}
}

// TestHooksOnRealWatch runs the watch against a private agent with both
// hooks and a filter: an instance going critical reaches the command and a
// webhook on 127.0.0.1; its recovery (not asked for) reaches neither.
func TestHooksOnRealWatch(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	posted := make(chan health.Event, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e health.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		posted <- e
	}))
	defer srv.Close()
	dir := t.TempDir()
	t.Setenv("OUT", dir)

	in := registry.Instance{Name: "hooks.greeter", ID: "hooks.greeter-1", Address: "10.0.1.7", Port: 80, TTL: time.Hour}
	if err := registry.NewRegistrar(c, in).Register(ctx); err != nil {
		t.Fatal(err)
	}
	var fl failures
	// One worker: hooks run in event order, so once the deregistration
	// has been posted, anything emitted before it has been too.
	d := hooks.New(hooks.WithExec(`cat >> "$OUT/events.jsonl"; echo >> "$OUT/events.jsonl"`), hooks.WithWebhook(srv.URL),
		hooks.WithFilter("critical", "deregistered"), hooks.WithConcurrency(1), hooks.WithOnFailure(fl.add))
	ready := make(chan struct{})
	w := health.NewWatcher(c, health.WatchOptions{Wait: 2 * time.Second, Ready: func([]health.Instance) { close(ready) }})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, d.Handle) }()
	<-ready

	var got []string
	await := func(want string) {
		t.Helper()
		for {
			select {
			case e := <-posted:
				got = append(got, e.Type+":"+e.To)
				if e.Type+":"+e.To == want {
					return
				}
			case <-ctx.Done():
				t.Fatalf("webhook got %v, waiting for %s", got, want)
			}
		}
	}
	step := func(status string) {
		if err := c.API.Agent().UpdateTTL(in.CheckID(), "", status); err != nil {
			t.Fatal(err)
		}
	}
	step(api.HealthCritical)
	// Wait for it: a change undone before the watch's next response is
	// never seen by anyone, which is Consul's model, not a lost alert.
	await("transition:critical")
	step(api.HealthPassing) // not asked for
	if err := c.API.Agent().ServiceDeregister(in.ID); err != nil {
		t.Fatal(err)
	}
	await("deregistered:")
	cancel()
	<-done
	_ = d.Close(context.Background())
	if f := fl.list(); len(f) > 0 {
		t.Errorf("failures: %v", f)
	}
	if want := []string{"transition:critical", "deregistered:"}; !slices.Equal(got, want) {
		t.Errorf("webhook got %v, want %v: the recovery must be filtered out", got, want)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	lines := strings.Fields(strings.TrimSpace(string(raw)))
	if len(lines) != len(got) {
		t.Errorf("exec ran %d times, webhook %d: %s", len(lines), len(got), raw)
	}
}
