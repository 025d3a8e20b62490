package registry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/boundhttp"
	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

// TestNotConsul: servers that answer, but not as Consul does. Every read
// ends in one WrongPeerError naming the address, and doctor's agent check
// fails with it instead of saying "Consul answers".
func TestNotConsul(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
	}{
		{"HTML page", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<html><body>hello</body></html>"))
		}},
		{"404 everywhere", http.NotFound},
		{"gateway 401 without a bearer token", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
		}},
		{"200 that is not JSON", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("ok"))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			cfg := api.DefaultConfig()
			cfg.Address = strings.TrimPrefix(srv.URL, "http://")
			cfg.Token, cfg.TokenFile = "", ""
			c, err := registry.NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Catalog(context.Background())
			var we *boundhttp.WrongPeerError
			if !errors.As(err, &we) || !strings.Contains(err.Error(), "is not a Consul agent") || !strings.Contains(err.Error(), cfg.Address) {
				t.Errorf("Catalog: %v, want a WrongPeerError naming %s", err, cfg.Address)
			}
			res := registry.AgentProbe(c)(context.Background())
			if res[0].Status != doctor.Fail || !strings.Contains(res[0].Detail, "is not a Consul agent") {
				t.Errorf("consul.agent = %s %q, want a failure saying it is not Consul", res[0].Status, res[0].Detail)
			}
		})
	}
}
