package health_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/health"
)

// TestRegistryProbeCannotSee: with a token that may read nothing under a
// default-deny policy, the catalog comes back empty. That is not "none
// critical": the probe fails and names the permission it lacks.
func TestRegistryProbeCannotSee(t *testing.T) {
	t.Parallel()
	a := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := a.Client(t, a.Token)
	if err := root.API.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "x1", Name: "x", Port: 1}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := root.API.ACL().TokenCreate(&api.ACLToken{Description: "sees nothing"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := health.RegistryProbe(a.Client(t, tok.SecretID))(context.Background())
	if len(res) == 0 || res[0].Check != "registry.critical" {
		t.Fatalf("results %+v", res)
	}
	if res[0].Status != doctor.Fail || !strings.Contains(res[0].Detail, "node:read") {
		t.Errorf("registry.critical = %s %q, want a failure naming node:read", res[0].Status, res[0].Detail)
	}
	for _, r := range res {
		if r.Status == doctor.OK {
			t.Errorf("%s is ok although the token sees nothing: %q", r.Check, r.Detail)
		}
	}
}
