package registry_test

import (
	"context"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
)

// TestNamesInAnyScript registers services and a node whose names are not
// ASCII or hold spaces and characters that mean something in a URL, and
// reads them back both ways: by name (/v1/health/service/:name) and in
// the whole catalog (/v1/catalog/node-services/:node). Escaping a name
// before consul/api escaped the path again made both miss them.
func TestNamesInAnyScript(t *testing.T) {
	t.Parallel()
	a := testenv.StartAgent(t)
	c := a.Client(t, "")
	ctx := context.Background()
	names := []string{"grüße-dienst", "服务", "with space", "per%cent", "q?mark", "hash#tag", "plus+sign"}
	node := "knoten ü #1"
	for i, n := range names {
		_, err := c.API.Catalog().Register(&api.CatalogRegistration{Node: node, Address: "127.0.0.1",
			Service: &api.AgentService{ID: n + "-id", Service: n, Port: 1000 + i}}, nil)
		if err != nil {
			t.Fatalf("register %q: %v", n, err)
		}
	}
	for _, n := range names {
		ins, _, _, err := c.ServiceInstances(ctx, n)
		if err != nil {
			t.Fatalf("ServiceInstances(%q): %v", n, err)
		}
		if len(ins) != 1 || ins[0].Service != n || ins[0].Node != node {
			t.Errorf("ServiceInstances(%q) = %+v, want the one instance on %q", n, ins, node)
		}
	}
	cat, err := c.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, in := range cat.Instances {
		if in.Node == node {
			got[in.Service] = true
		}
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("the catalog lost %q on node %q (saw %v)", n, node, got)
		}
	}
}
