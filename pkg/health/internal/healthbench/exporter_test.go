package healthbench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health/exporter"
	"github.com/microctl/microctl/pkg/registry"
)

// loopCollector is consul_exporter's approach written out (its
// pkg/exporter/consul_exporter.go, health summary on, the default): on
// every scrape, /v1/status/leader, /v1/status/peers, /v1/catalog/nodes,
// /v1/catalog/services, then /v1/health/service/:name for every service
// (concurrently, at most 32 at once: its default is no limit, which makes
// the agent answer 429 beyond http_max_conns_per_client, 200; its
// --consul.request-limit exists for that), and /v1/health/state/any.
type loopCollector struct{ c *registry.Client }

var (
	loopHealthy = prometheus.NewDesc("loop_catalog_service_node_healthy", "consul_exporter's per-instance health.", []string{"service_id", "node", "service_name"}, nil)
	loopChecks  = prometheus.NewDesc("loop_health_service_status", "consul_exporter's per-check status.", []string{"check", "node", "service_id", "service_name", "status"}, nil)
)

func (l loopCollector) Describe(ch chan<- *prometheus.Desc) { ch <- loopHealthy; ch <- loopChecks }

func (l loopCollector) Collect(ch chan<- prometheus.Metric) {
	api := l.c.API
	_, _ = api.Status().Leader()
	_, _ = api.Status().Peers()
	_, _, _ = api.Catalog().Nodes(nil)
	names, _, err := api.Catalog().Services(nil)
	if err != nil {
		return
	}
	var wg sync.WaitGroup
	limit := make(chan struct{}, 32)
	for name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit <- struct{}{}
			defer func() { <-limit }()
			entries, _, err := api.Health().Service(name, "", false, nil)
			if err != nil {
				panic(err) // a failed read would make the loop look cheaper than it is
			}
			for _, e := range entries {
				v := 1.0
				for _, c := range e.Checks {
					if c.Status != "passing" {
						v = 0
					}
				}
				ch <- prometheus.MustNewConstMetric(loopHealthy, prometheus.GaugeValue, v, e.Service.ID, e.Node.Node, e.Service.Service)
			}
		}()
	}
	wg.Wait()
	checks, _, err := api.Health().State("any", nil)
	if err != nil {
		return
	}
	for _, c := range checks {
		for _, s := range []string{"passing", "warning", "critical", "maintenance"} {
			v := 0.0
			if c.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(loopChecks, prometheus.GaugeValue, v, c.CheckID, c.Node, c.ServiceID, c.ServiceName, s)
		}
	}
}

// BenchmarkExporter compares one scrape of `microctl health exporter`
// (blocking queries in the background; a scrape renders the last state)
// with one scrape of consul_exporter's approach (every service read on
// every scrape), over the same populated agent. requests/op counts the
// HTTP requests that reached the agent during the scrapes, whoever made
// them (the exporter's background queries included).
//
//	eval "$(scripts/testenv.sh env)"
//	go test -run '^$' -bench Exporter -benchtime 20x ./pkg/health/internal/healthbench/
func BenchmarkExporter(b *testing.B) {
	agent := testenv.StartAgent(b)
	direct := clientFor(b, agent.Addr)
	start := time.Now()
	populate(b, direct)
	b.Logf("registered %d instances of %d services in %s", *services**perSvc, *services, time.Since(start).Round(time.Millisecond))
	p := newProxy(b, agent.Addr)
	c := clientFor(b, p.addr())

	scrape := func(b *testing.B, url string) int {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("scrape: %v %s", err, resp.Status)
		}
		return int(n)
	}
	run := func(b *testing.B, url string) {
		before := p.n.Load()
		size := 0
		for b.Loop() {
			size = scrape(b, url)
		}
		b.ReportMetric(float64(p.n.Load()-before)/float64(b.N), "requests/op")
		b.ReportMetric(float64(size), "bytes/scrape")
	}

	b.Run("microctl-exporter", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		e := exporter.New(c)
		go func() { _ = e.Run(ctx) }()
		srv := httptest.NewServer(promhttp.HandlerFor(e.Registry(), promhttp.HandlerOpts{}))
		defer srv.Close()
		for !e.Ready() {
			time.Sleep(50 * time.Millisecond)
		}
		run(b, srv.URL)
	})
	b.Run("consul_exporter-loop", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(loopCollector{c: c})
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		defer srv.Close()
		run(b, srv.URL)
	})
}
