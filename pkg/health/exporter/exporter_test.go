package exporter_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health/exporter"
	"github.com/microctl/microctl/pkg/registry"
)

// scrape fetches /metrics and parses it with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("Prometheus' parser rejects the output: %v", err)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

func requests(fams map[string]*dto.MetricFamily) float64 {
	var n float64
	for _, q := range []string{"catalog", "watch_checks", "watch_services"} {
		v, _ := value(fams, "microctl_consul_requests_total", map[string]string{"query": q})
		n += v
	}
	return n
}

// TestExporterFollowsAgent runs the exporter against a private agent with
// go-micro style instances: statuses, TTL and interval from Meta, a
// transition seen, instances by status, and scrapes that make no request.
func TestExporterFollowsAgent(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	mk := func(id string) registry.Instance {
		return registry.Instance{Name: "exp.greeter", Version: "1.0.0", ID: id, Address: "10.0.1.5", Port: 8080,
			Metadata: map[string]string{"protocol": "mucp"}, TTL: time.Hour, Interval: 20 * time.Minute}
	}
	a, b := mk("exp.greeter-a"), mk("exp.greeter-b")
	if err := registry.NewRegistrar(c, a).Register(ctx); err != nil { // registers and passes
		t.Fatal(err)
	}
	if err := c.API.Agent().ServiceRegister(b.Registration()); err != nil { // stays critical
		t.Fatal(err)
	}

	e := exporter.New(c, exporter.WithWait(2*time.Second))
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	srv := httptest.NewServer(promhttp.HandlerFor(e.Registry(), promhttp.HandlerOpts{}))
	defer srv.Close()

	waitFor := func(what string, ok func(map[string]*dto.MetricFamily) bool) map[string]*dto.MetricFamily {
		t.Helper()
		for {
			fams := scrape(t, srv.URL)
			if ok(fams) {
				return fams
			}
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	fams := waitFor("ready", func(f map[string]*dto.MetricFamily) bool {
		v, _ := value(f, "microctl_health_exporter_ready", nil)
		return v == 1
	})

	inst := func(id, status string) map[string]string {
		return map[string]string{"service": "exp.greeter", "instance": id, "status": status}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"microctl_health_instance_status", inst(a.ID, "passing"), 1},
		{"microctl_health_instance_status", inst(a.ID, "critical"), 0},
		{"microctl_health_instance_status", inst(b.ID, "critical"), 1},
		{"microctl_health_check_status", map[string]string{"instance": b.ID, "check": b.CheckID(), "check_type": "ttl", "status": "critical"}, 1},
		{"microctl_health_check_state_before_start", map[string]string{"instance": a.ID}, 1},
		{"microctl_health_check_transitions_total", map[string]string{"instance": a.ID}, 0},
		{"microctl_health_instance_ttl_seconds", map[string]string{"instance": a.ID, "source": "meta"}, 3600},
		{"microctl_health_instance_interval_seconds", map[string]string{"instance": a.ID, "source": "meta"}, 1200},
		{"microctl_health_service_instances", map[string]string{"service": "exp.greeter", "status": "passing"}, 1},
		{"microctl_health_service_instances", map[string]string{"service": "exp.greeter", "status": "critical"}, 1},
	} {
		got, ok := value(fams, tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}

	// Scrapes make no Consul request: many scrapes, the same count (the
	// blocking queries wait on an idle agent; 2s waits could return in
	// between, so compare scrapes against the watch's own pace).
	before := requests(scrape(t, srv.URL))
	for range 20 {
		scrape(t, srv.URL)
	}
	after := requests(scrape(t, srv.URL))
	if after-before > 4 {
		t.Errorf("21 scrapes moved the request count from %v to %v: scrapes must not query Consul", before, after)
	}

	// A transition: b passes.
	if err := c.API.Agent().UpdateTTL(b.CheckID(), "ok", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	fams = waitFor("b's transition", func(f map[string]*dto.MetricFamily) bool {
		v, _ := value(f, "microctl_health_check_transitions_total", map[string]string{"instance": b.ID})
		return v == 1
	})
	if v, _ := value(fams, "microctl_health_check_state_before_start", map[string]string{"instance": b.ID}); v != 0 {
		t.Errorf("after a seen transition, state_before_start = %v, want 0", v)
	}
	if v, _ := value(fams, "microctl_health_service_instances", map[string]string{"service": "exp.greeter", "status": "passing"}); v != 2 {
		t.Errorf("passing instances = %v, want 2", v)
	}

	// Deregistration removes the series.
	if err := c.API.Agent().ServiceDeregister(b.ID); err != nil {
		t.Fatal(err)
	}
	waitFor("b gone", func(f map[string]*dto.MetricFamily) bool {
		_, ok := value(f, "microctl_health_instance_status", map[string]string{"instance": b.ID})
		return !ok
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestExporterFlapping drives a check through enough transitions to be
// flapping.
func TestExporterFlapping(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := registry.Instance{Name: "exp.flappy", ID: "exp.flappy-1", Address: "10.0.1.6", Port: 80, TTL: time.Hour}
	if err := registry.NewRegistrar(c, in).Register(ctx); err != nil {
		t.Fatal(err)
	}
	e := exporter.New(c, exporter.WithWait(2*time.Second), exporter.WithFlapping(3, time.Hour))
	go func() { _ = e.Run(ctx) }()
	srv := httptest.NewServer(promhttp.HandlerFor(e.Registry(), promhttp.HandlerOpts{}))
	defer srv.Close()
	for !e.Ready() {
		select {
		case <-ctx.Done():
			t.Fatal("never ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
	labels := map[string]string{"instance": in.ID}
	for i, st := range []string{api.HealthCritical, api.HealthPassing, api.HealthCritical} {
		if err := c.API.Agent().UpdateTTL(in.CheckID(), fmt.Sprint("step ", i), st); err != nil {
			t.Fatal(err)
		}
		// Wait for each transition, so that none is merged into another.
		for {
			v, _ := value(scrape(t, srv.URL), "microctl_health_check_transitions_total", labels)
			if v == float64(i+1) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("transition %d never seen", i+1)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	fams := scrape(t, srv.URL)
	if v, _ := value(fams, "microctl_health_check_flapping", labels); v != 1 {
		t.Errorf("flapping = %v after 3 transitions with a threshold of 3", v)
	}
	var text strings.Builder
	for name := range fams {
		text.WriteString(name + " ")
	}
	if !strings.Contains(text.String(), "microctl_consul_requests_total") {
		t.Errorf("no request counter in %s", text.String())
	}
}
