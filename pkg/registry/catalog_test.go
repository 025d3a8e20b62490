package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// counting counts the HTTP requests a client makes.
type counting struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

func countingClient(t *testing.T, addr, token string) (*registry.Client, *counting) {
	t.Helper()
	cnt := &counting{next: http.DefaultTransport}
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = addr, token, ""
	cfg.HttpClient = &http.Client{Transport: cnt}
	c, err := registry.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, cnt
}

func registerN(t *testing.T, c *registry.Client, prefix string, services, perService int) {
	t.Helper()
	for s := range services {
		for i := range perService {
			in := registry.Instance{Name: fmt.Sprintf("%s%d", prefix, s), Version: "1.0", ID: fmt.Sprintf("%s%d-%d", prefix, s, i),
				Address: "10.0.1.5", Port: 8000 + i, Metadata: map[string]string{"protocol": "mucp"}, TTL: time.Hour, Interval: 30 * time.Second}
			if err := registry.NewRegistrar(c, in).Register(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// catalogNode registers an instance on a node of its own through the
// catalog API, as an agent on another host would appear.
func catalogNode(t *testing.T, c *registry.Client, node, addr, id, status string) {
	t.Helper()
	_, err := c.API.Catalog().Register(&api.CatalogRegistration{
		Node: node, Address: addr,
		Service: &api.AgentService{ID: id, Service: "remote", Address: addr, Port: 9090},
		Checks: api.HealthChecks{
			{Node: node, CheckID: "serfHealth", Name: "Serf Health Status", Status: api.HealthPassing},
			{Node: node, CheckID: "service:" + id, ServiceID: id, Name: "ttl", Status: status, Type: "ttl"},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
}

func TestCatalogConstantRequests(t *testing.T) {
	agent := testenv.StartAgent(t)
	c, cnt := countingClient(t, agent.Addr, "")
	ctx := context.Background()
	registerN(t, c, "svc", 10, 2)
	catalogNode(t, c, "remote-1", "10.9.0.1", "remote-a", api.HealthCritical)

	read := func() (*registry.Catalog, int64) {
		before := cnt.n.Load()
		cat, err := c.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cat, cnt.n.Load() - before
	}
	cat, n := read()
	// Two nodes: checks + nodes + one node-services per node.
	if n != 4 || cat.Requests != 4 {
		t.Errorf("read took %d requests (reported %d), want 4", n, cat.Requests)
	}
	if got := len(cat.Instances); got != 10*2+1+1 { // + consul's own service
		t.Errorf("%d instances, want 22", got)
	}
	registerN(t, c, "more", 40, 2)
	cat, n = read()
	if n != 4 || len(cat.Instances) != 102 {
		t.Errorf("after 40 more services: %d requests, %d instances; want 4 and 102", n, len(cat.Instances))
	}

	var svc, remote *registry.ServiceInstance
	for i := range cat.Instances {
		switch cat.Instances[i].ID {
		case "svc3-1":
			svc = &cat.Instances[i]
		case "remote-a":
			remote = &cat.Instances[i]
		}
	}
	if svc == nil || remote == nil {
		t.Fatal("instances missing")
	}
	if svc.Address != "10.0.1.5" || svc.Port != 8001 || svc.Meta[registry.MetaRegisterTTL] != "1h0m0s" ||
		len(svc.Checks) != 1 || svc.Checks[0].CheckID != "service:svc3-1" || svc.Checks[0].Status != "passing" ||
		svc.Checks[0].Type != "ttl" || registry.DecodeTags(svc.Tags).Version != "1.0" {
		t.Errorf("svc3-1 = %+v", *svc)
	}
	if remote.Node != "remote-1" || remote.NodeAddress != "10.9.0.1" || len(remote.Checks) != 1 || remote.Checks[0].Status != "critical" {
		t.Errorf("remote-a = %+v", *remote)
	}
	if n := cat.Node("remote-1"); n == nil || len(n.Checks) != 1 || n.Checks[0].CheckID != "serfHealth" {
		t.Errorf("remote-1 node = %+v", n)
	}
	if cat.ChecksIndex == 0 || cat.Filtered.Any() {
		t.Errorf("index %d, filtered %+v", cat.ChecksIndex, cat.Filtered)
	}

	// One service in one request, with its node's checks.
	before := cnt.n.Load()
	ins, nodes, _, err := c.ServiceInstances(ctx, "svc3")
	if err != nil || len(ins) != 2 || len(nodes) != 1 || len(nodes[0].Checks) != 1 || cnt.n.Load()-before != 1 {
		t.Errorf("ServiceInstances: %d instances, nodes %+v, err %v, %d requests", len(ins), nodes, err, cnt.n.Load()-before)
	}
}

func TestCatalogACL(t *testing.T) {
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := agent.Client(t, agent.Token)
	ctx := context.Background()
	registerN(t, root, "svc", 2, 1)
	tok := agent.TokenWith(t, "nodes-only", `node_prefix "" { policy = "read" }`)

	cat, err := agent.Client(t, tok).Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Instances) != 0 || !cat.Filtered.Services || cat.Filtered.Nodes || len(cat.Nodes) != 1 {
		t.Errorf("nodes-only token: %d instances, %d nodes, filtered %+v", len(cat.Instances), len(cat.Nodes), cat.Filtered)
	}
	msg := registry.FilteredError(agent.Addr, cat.Filtered).Error()
	if !strings.Contains(msg, agent.Addr) || !strings.Contains(msg, "lacks service:read") || strings.Contains(msg, "node:read") {
		t.Errorf("FilteredError = %q", msg)
	}

	anon, err := agent.Client(t, "").Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !anon.Filtered.Nodes || len(anon.Instances) != 0 {
		t.Errorf("anonymous: filtered %+v, %d instances", anon.Filtered, len(anon.Instances))
	}
	if msg := registry.FilteredError(agent.Addr, anon.Filtered).Error(); !strings.Contains(msg, "lacks node:read") {
		t.Errorf("FilteredError = %q", msg)
	}

	_, err = agent.Client(t, "00000000-0000-0000-0000-000000000000").Catalog(ctx)
	var pe *registry.PermissionError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "ACL not found") {
		t.Errorf("unknown token: %v", err)
	}
}

func TestCatalogUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	c, _ := countingClient(t, addr, "")
	_, err := c.Catalog(context.Background())
	var ue *registry.UnreachableError
	if !errors.As(err, &ue) || err.Error() != "cannot reach Consul at "+addr+": connection refused" {
		t.Errorf("err = %v", err)
	}
}

func TestDeregister(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()
	registerN(t, c, "local", 1, 1)
	catalogNode(t, c, "gone-node", "127.0.0.1", "ghost-1", api.HealthCritical)
	find := func(id string) (registry.ServiceInstance, bool) {
		cat, err := c.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range cat.Instances {
			if in.ID == id {
				return in, true
			}
		}
		return registry.ServiceInstance{}, false
	}
	dial := func(addr string) (*registry.Client, error) {
		cfg := api.DefaultConfig()
		cfg.Address, cfg.Token, cfg.TokenFile = addr, "", ""
		return registry.NewClient(cfg)
	}
	// A port where nothing listens stands for the other host's agent.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := l.Addr().(*net.TCPAddr).Port
	l.Close()

	// The local agent owns local0-0: removed through it, for good.
	in, _ := find("local0-0")
	r, err := c.Deregister(ctx, in, registry.DeregisterOptions{Dial: dial})
	if err != nil || r.Via != "agent" || r.Warning != "" {
		t.Fatalf("local: %+v, %v", r, err)
	}
	if _, ok := find("local0-0"); ok {
		t.Error("local0-0 still registered")
	}

	// ghost-1's agent does not answer: say so, remove nothing.
	in, _ = find("ghost-1")
	_, err = c.Deregister(ctx, in, registry.DeregisterOptions{Dial: dial, AgentPort: deadPort})
	var ue *registry.AgentUnreachableError
	want := fmt.Sprintf("the Consul agent of node gone-node at 127.0.0.1:%d does not answer: connection refused", deadPort)
	if !errors.As(err, &ue) || err.Error() != want || !strings.Contains(ue.Hint(), "--catalog-fallback") {
		t.Fatalf("unreachable owner: %v", err)
	}
	if _, ok := find("ghost-1"); !ok {
		t.Fatal("ghost-1 removed without --catalog-fallback")
	}

	// The agent at the node's address (this one, on its own port) does
	// not own it: it came through the catalog API.
	_, err = c.Deregister(ctx, in, registry.DeregisterOptions{Dial: dial, AgentPort: 0})
	var no *registry.NotOwnedError
	if !errors.As(err, &no) {
		t.Fatalf("not owned: %v", err)
	}

	// With the fallback: removed from the catalog, with the warning.
	r, err = c.Deregister(ctx, in, registry.DeregisterOptions{Dial: dial, AgentPort: deadPort, CatalogFallback: true})
	if err != nil || r.Via != "catalog" || !strings.Contains(r.Warning, "anti-entropy") {
		t.Fatalf("fallback: %+v, %v", r, err)
	}
	if _, ok := find("ghost-1"); ok {
		t.Error("ghost-1 still registered after the catalog fallback")
	}
}
