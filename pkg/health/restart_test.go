package health_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health"
)

// TestWatchAcrossAgentRestart stops a private dev agent under a running
// watch and starts it again empty (its index counting from scratch, as
// after any loss of state), then registers a different world: one instance
// back but critical, one gone, one new. The watch must say it reconnected
// before anything else, and the events it reports must add up to what the
// agent now holds: replaying them over the watch's first view gives exactly
// the catalog read afterwards. Nothing may be missed, whatever the order in
// which the watch noticed.
func TestWatchAcrossAgentRestart(t *testing.T) {
	a := testenv.StartAgent(t)
	c := a.Client(t, "")
	ag := func() *api.Agent { return a.Client(t, "").API.Agent() }
	register := func(name, id string, withTTL, passing bool) {
		t.Helper()
		reg := &api.AgentServiceRegistration{ID: id, Name: name, Address: "127.0.0.1", Port: 9}
		if withTTL {
			reg.Check = &api.AgentServiceCheck{CheckID: "service:" + id, TTL: "10m"}
		}
		if err := ag().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
		if withTTL && passing {
			if err := ag().UpdateTTL("service:"+id, "ok", api.HealthPassing); err != nil {
				t.Fatal(err)
			}
		}
	}
	register("svc-a", "a1", true, true)
	register("svc-b", "b1", true, true)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan health.Event, 100)
	ready := make(chan map[string]string, 1)
	w := health.NewWatcher(c, health.WatchOptions{
		// The default wait (5m): a blocking query sent with the old agent's
		// index to the restarted one would block for all of it.
		MinInterval: 50 * time.Millisecond,
		BackoffMin:  100 * time.Millisecond, BackoffMax: 500 * time.Millisecond,
		Ready: func(ins []health.Instance) {
			m := map[string]string{}
			for _, in := range ins {
				if in.Service != "consul" { // the dev agent's own
					m[in.Service+"/"+in.ID] = in.Status
				}
			}
			ready <- m
		},
	})
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e health.Event) { events <- e }) }()
	var model map[string]string
	select {
	case model = <-ready:
	case err := <-done:
		t.Fatalf("watch ended before its first view: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no first view")
	}
	if want := map[string]string{"svc-a/a1": "passing", "svc-b/b1": "passing"}; !maps.Equal(model, want) {
		t.Fatalf("first view %v, want %v", model, want)
	}

	a.Restart(t, nil)
	register("svc-a", "a1", true, false) // back, its TTL check critical until a pass
	register("svc-c", "c1", false, false)
	want := map[string]string{"svc-a/a1": "critical", "svc-c/c1": "passing"}

	var seen []health.Event
	deadline := time.After(90 * time.Second)
	for !maps.Equal(model, want) || len(seen) == 0 {
		select {
		case e := <-events:
			seen = append(seen, e)
			if e.Service == "consul" {
				continue
			}
			key := e.Service + "/" + e.Instance
			switch e.Type {
			case health.EventRegistered:
				model[key] = e.Status
			case health.EventDeregistered:
				delete(model, key)
			case health.EventTransition, health.EventCheckAdded:
				if e.Instance != "" {
					model[key] = e.Status
				}
			}
		case err := <-done:
			t.Fatalf("watch ended: %v", err)
		case <-deadline:
			t.Fatalf("after the restart the events add up to %v, want %v; events: %+v", model, want, seen)
		}
	}
	for _, e := range seen {
		t.Logf("%s %s/%s %s %s->%s %s", e.Type, e.Service, e.Instance, e.Check, e.From, e.To, e.Output)
	}
	if seen[0].Type != health.EventReconnected {
		t.Errorf("first event after the restart is %q, want %q; events: %+v", seen[0].Type, health.EventReconnected, seen)
	}
	for _, e := range seen[1:] {
		if e.Type == health.EventReconnected {
			t.Errorf("more than one %q for one restart: %+v", health.EventReconnected, seen)
		}
	}
	// What the events add up to is what a fresh read says.
	cat, err := c.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	now := map[string]string{}
	for _, in := range health.Build(cat, health.Options{}) {
		if in.Service != "consul" {
			now[in.Service+"/"+in.ID] = in.Status
		}
	}
	if !maps.Equal(now, want) {
		t.Errorf("catalog after the restart: %v, want %v", now, want)
	}
}
