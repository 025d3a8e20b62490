package health_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

func goMicro(name, id string, ttl, interval time.Duration) registry.Instance {
	return registry.Instance{Name: name, Version: "1.0.0", ID: id, Address: "10.0.1.5", Port: 8080,
		Metadata: map[string]string{"protocol": "mucp", "registry": "consul"}, TTL: ttl, Interval: interval}
}

// registerCritical registers in without passing its TTL: a TTL check
// starts critical.
func registerCritical(t *testing.T, c *registry.Client, in registry.Instance) {
	t.Helper()
	if err := c.API.Agent().ServiceRegister(in.Registration()); err != nil {
		t.Fatal(err)
	}
}

func pass(t *testing.T, c *registry.Client, in registry.Instance) {
	t.Helper()
	if err := c.API.Agent().UpdateTTL(in.CheckID(), "", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
}

// TestWatchSeesHeartbeatsStop runs the go-micro life cycle against a real
// agent: an instance heartbeats, then stops; the watch must report
// passing -> critical within the TTL plus a small slack, then the
// registration and deregistration of another instance.
func TestWatchSeesHeartbeatsStop(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A TTL well above the interval: heartbeats on a loaded machine must
	// not be late enough to expire it while they run.
	const ttl = 3 * time.Second
	a := goMicro("greeter", "greeter-a", ttl, 500*time.Millisecond)
	reg := registry.NewRegistrar(c, a)
	if err := reg.Register(ctx); err != nil {
		t.Fatal(err)
	}
	hbCtx, stopHeartbeats := context.WithCancel(ctx)
	go reg.Run(hbCtx, func(err error) { t.Log(err) })

	events := make(chan health.Event, 100)
	ready := make(chan []health.Instance, 1)
	w := health.NewWatcher(c, health.WatchOptions{Services: []string{"greeter"}, Ready: func(ins []health.Instance) { ready <- ins }})
	done := make(chan error, 1)
	go func() {
		done <- w.Run(ctx, func(e health.Event) {
			t.Logf("event %s %s %s->%s, instance %s", e.Type, e.Instance, e.From, e.To, e.Status)
			events <- e
		})
	}()
	select {
	case ins := <-ready:
		if len(ins) != 1 || ins[0].Status != "passing" || ins[0].TTL != ttl {
			t.Fatalf("watching %+v", ins)
		}
	case err := <-done:
		t.Fatal(err)
	}
	next := func(what string, within time.Duration) health.Event {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(within):
			t.Fatalf("no %s event within %s", what, within)
		}
		return health.Event{}
	}

	// Heartbeats keep it passing: no event for more than a TTL.
	select {
	case e := <-events:
		t.Fatalf("event while heartbeating: %+v", e)
	case <-time.After(ttl + time.Second):
	}

	stopHeartbeats()
	stopped := time.Now()
	e := next("transition", ttl+5*time.Second)
	if e.Type != health.EventTransition || e.Instance != "greeter-a" || e.Check != a.CheckID() || e.Kind != "ttl" ||
		e.From != "passing" || e.To != "critical" || e.Status != "critical" || !e.PreviousAtLeast {
		t.Fatalf("event = %+v", e)
	}
	t.Logf("passing -> critical seen %s after the last heartbeat stopped (TTL %s)", time.Since(stopped).Round(time.Millisecond), ttl)

	b := goMicro("greeter", "greeter-b", time.Minute, 10*time.Second)
	if err := registry.NewRegistrar(c, b).Register(ctx); err != nil {
		t.Fatal(err)
	}
	e = next("registered", 10*time.Second)
	if e.Type != health.EventRegistered || e.Instance != "greeter-b" ||
		e.Address != "10.0.1.5:8080" || e.Version != "1.0.0" || e.TTL == nil || *e.TTL != "1m0s" {
		t.Fatalf("event = %+v", e)
	}
	// Registering is two steps, register then pass (a TTL check starts
	// critical): the watch may see the instance arrive critical, then pass.
	if e.Status != "passing" {
		if e := next("transition", 10*time.Second); e.Type != health.EventTransition || e.Instance != "greeter-b" ||
			e.From != "critical" || e.To != "passing" || e.PreviousAtLeast {
			t.Fatalf("event = %+v", e)
		}
	}
	// Not filtered in: another service's registration makes no event.
	if err := registry.NewRegistrar(c, goMicro("other", "other-1", time.Minute, 10*time.Second)).Register(ctx); err != nil {
		t.Fatal(err)
	}
	if err := registry.NewRegistrar(c, b).Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if e := next("deregistered", 10*time.Second); e.Type != health.EventDeregistered || e.Instance != "greeter-b" ||
		e.Status != "passing" || e.PreviousAtLeast || e.PreviousFor == nil {
		t.Fatalf("event = %+v", e)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}

	// The stopped instance makes `health` unhealthy.
	snap, err := health.Read(context.Background(), c, health.Options{Services: []string{"greeter"}})
	if err != nil {
		t.Fatal(err)
	}
	if tot := health.Total(snap.Instances); tot.Critical != 1 {
		t.Errorf("totals = %+v, want one critical", tot)
	}
}

// TestObserveCritical: only instances critical at the start whose critical
// checks did not change for the whole threshold are kept.
func TestObserveCritical(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	dead := goMicro("svc", "svc-dead", 30*time.Second, 10*time.Second)             // critical all along
	recovering := goMicro("svc", "svc-recovering", 30*time.Second, 10*time.Second) // critical, then passes once
	dying := goMicro("svc", "svc-dying", time.Second, 300*time.Millisecond)        // passing, then critical midway
	alive := goMicro("svc", "svc-alive", 10*time.Second, time.Second)              // heartbeats throughout
	registerCritical(t, c, dead)
	registerCritical(t, c, recovering)
	if err := registry.NewRegistrar(c, dying).Register(ctx); err != nil {
		t.Fatal(err)
	}
	ra := registry.NewRegistrar(c, alive)
	if err := ra.Register(ctx); err != nil {
		t.Fatal(err)
	}
	go ra.Run(ctx, nil)

	const threshold = 3 * time.Second
	sleep := func(ctx context.Context, d time.Duration) error {
		time.Sleep(d / 2)
		pass(t, c, recovering)
		time.Sleep(d - d/2)
		return ctx.Err()
	}
	var progress []string
	obs, err := health.ObserveCritical(ctx, c, health.PruneOptions{CriticalFor: threshold, Services: []string{"svc"}, Sleep: sleep,
		Progress: func(m string) { progress = append(progress, m) }})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, cand := range obs.Candidates {
		kept = append(kept, cand.ID)
		if cand.ObservedFor.Duration() < threshold || len(cand.CriticalChecks) != 1 {
			t.Errorf("candidate %+v", cand)
		}
	}
	if !slices.Equal(kept, []string{"svc-dead"}) {
		t.Errorf("kept %v, want only svc-dead", kept)
	}
	if len(obs.Spared) != 1 || obs.Spared[0].Instance != "svc-recovering" || obs.Spared[0].Reason != "recovered during the observation" {
		t.Errorf("spared = %+v", obs.Spared)
	}
	if len(progress) != 1 || !strings.Contains(progress[0], "2 critical instance(s)") {
		t.Errorf("progress = %q", progress)
	}

	// --critical-for 0 takes what is critical now, without waiting.
	obs, err = health.ObserveCritical(ctx, c, health.PruneOptions{Services: []string{"svc"}, Sleep: func(context.Context, time.Duration) error {
		t.Fatal("slept with CriticalFor 0")
		return nil
	}})
	if err != nil || len(obs.Candidates) != 2 { // dead and dying (recovering passes for 30s)
		t.Errorf("CriticalFor 0: %+v, %v", obs.Candidates, err)
	}
}

func TestReadNamesTheMissingPermission(t *testing.T) {
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := agent.Client(t, agent.Token)
	if err := registry.NewRegistrar(root, goMicro("greeter", "greeter-1", time.Minute, 10*time.Second)).Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	tok := agent.TokenWith(t, "nodes", `node_prefix "" { policy = "read" }`)
	_, err := health.Read(context.Background(), agent.Client(t, tok), health.Options{})
	var pe *registry.PermissionError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "lacks service:read") || !strings.Contains(err.Error(), agent.Addr) {
		t.Errorf("err = %v", err)
	}
	// The management token sees it, and a wrong name gets a suggestion.
	_, err = health.Read(context.Background(), root, health.Options{Services: []string{"greter"}})
	if err == nil || err.Error() != "no service named greter; did you mean greeter?" {
		t.Errorf("err = %v", err)
	}
}
