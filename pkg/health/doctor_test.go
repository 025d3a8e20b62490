package health

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

type catalogFunc func(context.Context) (*registry.Catalog, error)

func (f catalogFunc) Catalog(ctx context.Context) (*registry.Catalog, error) { return f(ctx) }

func TestRegistryProbe(t *testing.T) {
	serfDown := registry.Check{Node: "n1", CheckID: "serfHealth", Status: "critical"}
	ok := svc("a-1", "a", "passing")
	ok.Meta = map[string]string{registry.MetaRegisterTTL: "15s", registry.MetaRegisterInterval: "5s"}
	bad := svc("b-1", "b", "critical")
	bad.Meta = map[string]string{registry.MetaRegisterTTL: "2s", registry.MetaRegisterInterval: "3s"}
	tests := []struct {
		name string
		cat  *registry.Catalog
		err  error
		want map[string]doctor.Status
		text string
	}{
		{"all well", catalogOf([]registry.ServiceInstance{ok}), nil,
			map[string]doctor.Status{"registry.critical": doctor.OK, "registry.stale": doctor.OK, "registry.lint": doctor.OK}, "1 instance(s) of 1 service(s), none critical"},
		{"critical and misconfigured", catalogOf([]registry.ServiceInstance{ok, bad}), nil,
			map[string]doctor.Status{"registry.critical": doctor.Warn, "registry.stale": doctor.OK, "registry.lint": doctor.Warn}, "1 of 2 instance(s) critical: b/b-1"},
		{"agent gone", catalogOf([]registry.ServiceInstance{ok}, serfDown), nil,
			map[string]doctor.Status{"registry.critical": doctor.Warn, "registry.stale": doctor.Warn, "registry.lint": doctor.OK}, "on nodes whose agent is gone"},
		{"consul down", nil, &registry.UnreachableError{Addr: "x", Err: errors.New("refused")},
			map[string]doctor.Status{"registry.critical": doctor.Skip, "registry.stale": doctor.Skip, "registry.lint": doctor.Skip}, "cannot read the catalog"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := RegistryProbe(catalogFunc(func(context.Context) (*registry.Catalog, error) { return tt.cat, tt.err }))(context.Background())
			var all []string
			for _, r := range res {
				if tt.want[r.Check] != r.Status {
					t.Errorf("%s: %s (%s), want %s", r.Check, r.Status, r.Detail, tt.want[r.Check])
				}
				all = append(all, r.Detail)
			}
			if len(res) != 3 || !strings.Contains(strings.Join(all, "|"), tt.text) {
				t.Errorf("results %+v lack %q", res, tt.text)
			}
		})
	}
}
