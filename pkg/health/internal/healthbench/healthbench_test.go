package healthbench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

var (
	services = flag.Int("healthbench.services", 500, "services to register")
	perSvc   = flag.Int("healthbench.instances", 4, "instances per service")
	nodes    = flag.Int("healthbench.nodes", 1, "nodes to spread instances over (1: all on the agent, registered the go-micro way; more: extra nodes through the catalog API, as agents on other hosts would appear)")
)

// proxy counts the requests that reach the agent, whoever makes them:
// microctl in-process, the microctl binary, the consul CLI, curl.
type proxy struct {
	n   atomic.Int64
	srv *httptest.Server
}

func newProxy(b *testing.B, target string) *proxy {
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &proxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.n.Add(1)
		rp.ServeHTTP(w, r)
	}))
	b.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) addr() string { return p.srv.Listener.Addr().String() }

func populate(b *testing.B, c *registry.Client) {
	ctx := context.Background()
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s, k := i / *perSvc, i%*perSvc
				in := registry.Instance{Name: fmt.Sprintf("bench.svc.%03d", s), Version: fmt.Sprintf("1.0.%d", s),
					ID: fmt.Sprintf("bench.svc.%03d-%d", s, k), Address: "10.0.1.5", Port: 10000 + i,
					Metadata: map[string]string{"transport": "http", "broker": "http", "server": "http", "registry": "consul", "protocol": "mucp"},
					Endpoints: []registry.Endpoint{{Name: fmt.Sprintf("Svc%03d.Call", s), Request: &registry.Value{Name: "Request", Type: "Request"},
						Response: &registry.Value{Name: "Response", Type: "Response"}}},
					TTL: time.Hour, Interval: 20 * time.Minute}
				var err error
				if node := i % *nodes; node == 0 {
					// The go-micro way, through the agent; every other
					// instance passes, the rest stay critical.
					if k%2 == 0 {
						err = registry.NewRegistrar(c, in).Register(ctx)
					} else {
						err = c.API.Agent().ServiceRegister(in.Registration())
					}
				} else {
					reg := in.Registration()
					_, err = c.API.Catalog().Register(&api.CatalogRegistration{
						Node: fmt.Sprintf("bench-node-%02d", node), Address: fmt.Sprintf("10.0.0.%d", node),
						Service: &api.AgentService{ID: reg.ID, Service: reg.Name, Tags: reg.Tags, Address: reg.Address, Port: reg.Port, Meta: reg.Meta},
						Checks: api.HealthChecks{{CheckID: "service:" + reg.ID, ServiceID: reg.ID, Name: "ttl", Type: "ttl",
							Status: map[bool]string{true: "passing", false: "critical"}[k%2 == 0]}},
					}, nil)
				}
				if err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for i := range *services * *perSvc {
		work <- i
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
}

func clientFor(b *testing.B, addr string) *registry.Client {
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = addr, "", ""
	c, err := registry.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkHealth compares, over one populated agent:
//
//	microctl-read     microctl's catalog read and model, in-process
//	microctl-binary   `microctl health -o json` as a user runs it (process start included)
//	loop-go           the obvious loop, in-process with a keep-alive client
//	loop-shell        the obvious loop as a script: `consul catalog services`, then curl per service
func BenchmarkHealth(b *testing.B) {
	agent := testenv.StartAgent(b)
	direct := clientFor(b, agent.Addr)
	start := time.Now()
	populate(b, direct)
	want := *services**perSvc + 1 // + consul's own service
	cat, err := direct.Catalog(context.Background())
	if err != nil || len(cat.Instances) != want {
		b.Fatalf("populated %d instances (err %v), want %d", len(cat.Instances), err, want)
	}
	b.Logf("registered %d instances of %d services on %d node(s) in %s", want-1, *services, *nodes, time.Since(start).Round(time.Millisecond))
	p := newProxy(b, agent.Addr)
	c := clientFor(b, p.addr())
	ctx := context.Background()

	report := func(b *testing.B, before int64) {
		b.ReportMetric(float64(p.n.Load()-before)/float64(b.N), "requests/op")
	}

	b.Run("microctl-catalog-only", func(b *testing.B) {
		before := p.n.Load()
		for b.Loop() {
			if _, err := c.Catalog(ctx); err != nil {
				b.Fatal(err)
			}
		}
		report(b, before)
	})

	b.Run("microctl-read", func(b *testing.B) {
		before := p.n.Load()
		for b.Loop() {
			snap, err := health.Read(ctx, c, health.Options{})
			if err != nil || len(snap.Instances) != want {
				b.Fatalf("%v, %d instances", err, len(snap.Instances))
			}
		}
		report(b, before)
	})

	bin := filepath.Join(b.TempDir(), "microctl")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = testenv.RepoRoot(b)
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	b.Run("microctl-binary", func(b *testing.B) {
		before := p.n.Load()
		for b.Loop() {
			cmd := exec.Command(bin, "health", "-o", "json", "--fail-on", "never")
			cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+p.addr(), "CONSUL_HTTP_TOKEN=")
			if out, err := cmd.Output(); err != nil || len(out) < want*100 {
				b.Fatalf("microctl health: %v (%d bytes)", err, len(out))
			}
		}
		report(b, before)
	})

	b.Run("loop-go", func(b *testing.B) {
		before := p.n.Load()
		for b.Loop() {
			names, _, err := c.API.Catalog().Services(nil)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for name := range names {
				entries, _, err := c.API.Health().Service(name, "", false, nil)
				if err != nil {
					b.Fatal(err)
				}
				n += len(entries)
			}
			if n != want {
				b.Fatalf("loop saw %d instances, want %d", n, want)
			}
		}
		report(b, before)
	})

	consul := testenv.ConsulBinary(b)
	if _, err := exec.LookPath("curl"); err != nil {
		b.Log("no curl: loop-shell skipped")
		return
	}
	b.Run("loop-shell", func(b *testing.B) {
		before := p.n.Load()
		script := `for s in $("$CONSUL" catalog services); do curl -sf "http://$CONSUL_HTTP_ADDR/v1/health/service/$s" >/dev/null || exit 1; done`
		for b.Loop() {
			cmd := exec.Command("sh", "-c", script)
			cmd.Env = append(os.Environ(), "CONSUL="+consul, "CONSUL_HTTP_ADDR="+p.addr(), "CONSUL_HTTP_TOKEN=")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("loop: %v\n%s", err, out)
			}
		}
		report(b, before)
	})
}
