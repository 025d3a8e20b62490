package registry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// FuzzCatalogResponses feeds arbitrary bodies for the three endpoints a
// catalog read uses: whatever a proxy or a broken agent answers, the read
// returns an error or a catalog, never panics, and never attaches a check
// to an instance of another node.
func FuzzCatalogResponses(f *testing.F) {
	f.Add(`[{"Node":"n1","CheckID":"serfHealth","Status":"passing"},{"Node":"n1","CheckID":"service:a","ServiceID":"a","Status":"critical","Type":"ttl"}]`,
		`[{"Node":"n1","Address":"10.0.0.1"}]`,
		`{"Node":{"Node":"n1","Address":"10.0.0.1"},"Services":[{"ID":"a","Service":"svc","Port":80,"Tags":["v-zz"],"CreateIndex":1}]}`, "7")
	f.Add(`[]`, `[{"Node":"n1"},{"Node":"n1"}]`, `{"Node":null,"Services":null}`, "0")
	f.Add(`{}`, `null`, `[]`, "x")
	f.Add(`[{"Node":"n2","CheckID":"c","ServiceID":"a"}]`, `[{"Node":"n1"}]`, `{"Services":[{"ID":"a","Service":""}]}`, "18446744073709551615")

	var mu sync.Mutex
	var checks, nodes, services, index string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("X-Consul-Index", index)
		switch {
		case r.URL.Path == "/v1/health/state/any":
			w.Write([]byte(checks))
		case r.URL.Path == "/v1/catalog/nodes":
			w.Write([]byte(nodes))
		case strings.HasPrefix(r.URL.Path, "/v1/catalog/node-services/"):
			w.Write([]byte(services))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = srv.Listener.Addr().String(), "", ""
	c, err := registry.NewClient(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ch, nd, sv, idx string) {
		mu.Lock()
		checks, nodes, services, index = ch, nd, sv, idx
		mu.Unlock()
		cat, err := c.Catalog(context.Background())
		if err != nil {
			return
		}
		for _, in := range cat.Instances {
			for _, c := range in.Checks {
				if c.Node != in.Node || c.ServiceID != in.ID {
					t.Fatalf("check %+v attached to instance %s on %s", c, in.ID, in.Node)
				}
			}
		}
	})
}
