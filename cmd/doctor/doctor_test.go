package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/testenv"
	pkgdoctor "github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

func runDoctor(t *testing.T, consul *registry.Client, docker client.APIClient, format cmdutil.Format) (pkgdoctor.Report, string, error) {
	t.Helper()
	ios, _, out, _ := cmdutil.Test()
	opts := &Options{IO: ios, Output: format, Timeout: 20 * time.Second,
		Consul: func() (*registry.Client, error) { return consul, nil },
		Docker: func() (client.APIClient, error) { return docker, nil }}
	err := run(context.Background(), opts)
	var rep pkgdoctor.Report
	if format.JSON() {
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("doctor -o json printed invalid JSON: %v\n%s", jerr, out)
		}
	}
	return rep, out.String(), err
}

func statusOf(rep pkgdoctor.Report, check string) pkgdoctor.Result {
	for _, r := range rep.Results {
		if r.Check == check {
			return r
		}
	}
	return pkgdoctor.Result{Status: "missing"}
}

func TestDoctorAgainstTheTestEnvironment(t *testing.T) {
	consul := testenv.Consul(t)
	docker := testenv.Docker(t)
	rep, _, err := runDoctor(t, consul, docker, cmdutil.FormatJSON)
	for _, c := range []string{"docker.engine", "docker.api", "consul.agent", "consul.leader", "consul.token"} {
		if r := statusOf(rep, c); r.Status != pkgdoctor.OK {
			t.Errorf("%s: %s %q, want ok", c, r.Status, r.Detail)
		}
	}
	// docker.swarm is ok or warn depending on whether the engine is in a
	// swarm, never fail on a healthy engine.
	if r := statusOf(rep, "docker.swarm"); r.Status != pkgdoctor.OK && r.Status != pkgdoctor.Warn {
		t.Errorf("docker.swarm: %s %q", r.Status, r.Detail)
	}
	if err != nil || !rep.Healthy {
		t.Errorf("healthy environment reported unhealthy: err=%v report=%+v", err, rep)
	}
}

func TestDoctorTokenChecks(t *testing.T) {
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	docker := testenv.Docker(t)
	// A valid token that may read KV but not the agent: the token is fine,
	// only the agent details are hidden.
	limited := agent.TokenWith(t, "kvread", `key_prefix "" { policy = "read" }`)
	tests := []struct {
		name       string
		token      string
		wantStatus pkgdoctor.Status
		wantDetail string
	}{
		{"management token", agent.Token, pkgdoctor.OK, "token accepted"},
		{"valid token without agent:read", limited, pkgdoctor.OK, "policies: kvread"},
		{"unknown token", "00000000-0000-0000-0000-000000000000", pkgdoctor.Fail, "ACL not found"},
		{"anonymous", "", pkgdoctor.Fail, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, _, err := runDoctor(t, agent.Client(t, tt.token), docker, cmdutil.FormatJSON)
			r := statusOf(rep, "consul.token")
			if r.Status != tt.wantStatus || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Errorf("consul.token = %s %q, want %s containing %q", r.Status, r.Detail, tt.wantStatus, tt.wantDetail)
			}
			if tt.wantStatus == pkgdoctor.Fail {
				var ue *cmdutil.UnhealthyError
				if !errors.As(err, &ue) {
					t.Errorf("err = %v, want UnhealthyError (exit 3)", err)
				}
				if !strings.Contains(r.Hint, "CONSUL_HTTP_TOKEN") {
					t.Errorf("hint %q does not say how to pass a token", r.Hint)
				}
			}
		})
	}
}

func TestDoctorConsulStopped(t *testing.T) {
	docker := testenv.Docker(t)
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:1"
	c, err := registry.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err := runDoctor(t, c, docker, cmdutil.FormatTable)
	var ue *cmdutil.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnhealthyError", err)
	}
	want := []string{"fail", "consul.agent", "cannot reach Consul at 127.0.0.1:1: connection refused (set --consul-addr or CONSUL_HTTP_ADDR)"}
	found := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == want[0] && f[1] == want[1] && strings.Contains(line, want[2]) {
			found = true
		}
	}
	if !found {
		t.Errorf("no line %q:\n%s", want, out)
	}
}
