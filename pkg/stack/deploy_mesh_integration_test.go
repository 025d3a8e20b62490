package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// Deploys gated on Consul, on the real engine. One Consul runs for all of
// them as a stack of its own (on an attachable overlay network the test
// stacks join as external, so their greeters reach it as "consul", as in
// the demo); each subtest deploys its own stack, registering under its own
// Consul name, in parallel. Timings are short (TTL 5s, min-healthy 2s,
// healthy deadline 15s) to keep the suite to about a minute and a half.

type meshInfra struct {
	cli    client.APIClient
	consul *registry.Client
	net    string
}

func startMeshInfra(t *testing.T) *meshInfra {
	t.Helper()
	cli := manager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, img := range []string{"microctl/consul:dev", "microctl/greeter:critical"} {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			testenv.Missing(t, "image %s is missing (run make images): %v", img, err)
		}
	}
	stack := newStack(t, cli)
	port := freeTCPPort(t)
	infra := &meshInfra{cli: cli, net: stack + "_mesh"}
	file := stackFile(t, "", fmt.Sprintf(`
services:
  consul:
    image: microctl/consul:dev
    command: ["agent", "-dev", "-client", "0.0.0.0", "-log-level", "warn"]
    ports:
      - {target: 8500, published: %d, mode: host}
    networks: [mesh]
    deploy:
      endpoint_mode: dnsrr
networks:
  mesh:
    driver: overlay
    attachable: true
`, port))
	_, res := deployFile(t, cli, stack, file, PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:" + strconv.Itoa(port)
	c, err := registry.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	infra.consul = c
	deadline := time.Now().Add(60 * time.Second)
	for {
		lctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		l, err := c.Leader(lctx)
		cancel()
		if err == nil && l != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stack's Consul has no leader: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return infra
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// greeterFile is a stack of one mesh service, greeter, registering as
// name in the infra's Consul.
func (m *meshInfra) greeterFile(t *testing.T, dir, image, name string, replicas int, env ...string) string {
	t.Helper()
	vars := map[string]string{"MICRO_SERVER_NAME": name, "MICRO_REGISTRY_ADDRESS": "consul:8500",
		"MICRO_REGISTER_TTL": "5", "MICRO_REGISTER_INTERVAL": "1"}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	envs := ""
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		envs += fmt.Sprintf("      %s: %q\n", k, vars[k])
	}
	return stackFile(t, dir, fmt.Sprintf(`
services:
  greeter:
    image: %s
    environment:
%s    networks: [mesh]
    stop_grace_period: 5s
    deploy:
      replicas: %d
      endpoint_mode: dnsrr
      labels:
        microctl.consul.service: %s
      restart_policy: {condition: any, delay: 1s}
networks:
  mesh:
    name: %s
    external: true
`, image, envs, replicas, name, m.net))
}

func (m *meshInfra) meshOpts() MeshOptions {
	return MeshOptions{Consul: m.consul, MinHealthy: 2 * time.Second, HealthyDeadline: 15 * time.Second}
}

// meshDeploy plans and deploys file with the gate on.
func (m *meshInfra) meshDeploy(t *testing.T, ctx context.Context, stack, file string, do DeployOptions) (*Plan, *Result, error) {
	t.Helper()
	p, err := planFile(t, m.cli, stack, file, PlanOptions{Mesh: m.meshOpts()})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	do.Mesh = m.meshOpts()
	if do.Timeout == 0 {
		// Generous: each replaced task waits the healthy deadline, and a
		// loaded CI machine starts containers slowly. A bound, not a
		// measurement.
		do.Timeout = 4 * time.Minute
	}
	if do.Reporter == nil {
		do.Reporter = logReporter{t}
	}
	res, err := Deploy(ctx, m.cli, p, do)
	return p, res, err
}

// passing returns the passing instances of name.
func (m *meshInfra) passing(t *testing.T, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ins, nodes, _, err := m.consul.ServiceInstances(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	_ = nodes
	var out []string
	for _, in := range ins {
		ok := true
		for _, c := range in.Checks {
			ok = ok && c.Status == "passing"
		}
		if ok {
			out = append(out, in.ID)
		}
	}
	return out
}

func TestMeshDeploy(t *testing.T) {
	m := startMeshInfra(t)

	// v1 of a mesh service, deployed and gated: the base of every case.
	base := func(t *testing.T, name string) (string, string) {
		t.Helper()
		stack := newStack(t, m.cli)
		dir := t.TempDir()
		file := m.greeterFile(t, dir, imgGood, name, 2)
		p, res, err := m.meshDeploy(t, context.Background(), stack, file, DeployOptions{})
		if err != nil {
			t.Fatalf("deploy v1: %v", err)
		}
		mustConverge(t, res)
		if p.Services[0].Mesh == nil || p.Services[0].Mesh.Consul != name || !p.Services[0].Mesh.Declared {
			t.Fatalf("plan: greeter not planned as mesh service %s: %+v", name, p.Services[0].Mesh)
		}
		if n := len(m.passing(t, name)); n != 2 {
			t.Fatalf("after v1: %d passing instances of %s, want 2", n, name)
		}
		return stack, dir
	}

	t.Run("good update converges only once the new instances pass", func(t *testing.T) {
		t.Parallel()
		name := "it.good." + strconv.FormatInt(time.Now().UnixNano(), 36)
		stack, dir := base(t, name)
		file := m.greeterFile(t, dir, imgGood, name, 2, "MICRO_SERVER_VERSION=v2")
		p, res, err := m.meshDeploy(t, context.Background(), stack, file, DeployOptions{RollbackOnFailure: true})
		if err != nil {
			t.Fatal(err)
		}
		mustConverge(t, res)
		if p.Services[0].Action != ActionUpdate || !strings.Contains(p.Services[0].Update, "start-first") {
			t.Errorf("plan: %s, update %q", p.Services[0].Action, p.Services[0].Update)
		}
		if n := len(m.passing(t, name)); n != 2 {
			t.Errorf("after v2: %d passing instances, want 2 (old ones gone)", n)
		}
	})

	failing := []struct {
		name, image string
		env         []string
		want        string
	}{
		{"never registers", imgGood, []string{"MICRO_REGISTRY_ADDRESS=consul:9999"}, "not registered in Consul|none registered in Consul"},
		{"goes critical", "microctl/greeter:critical", nil, "went critical"},
		{"crashes on start", imgCrash, nil, "tasks keep failing|update paused"},
	}
	for _, tc := range failing {
		t.Run(tc.name+": failed, rolled back, previous version serving", func(t *testing.T) {
			t.Parallel()
			name := "it.bad." + strconv.FormatInt(time.Now().UnixNano(), 36)
			stack, dir := base(t, name)
			before := m.passing(t, name)
			file := m.greeterFile(t, dir, tc.image, name, 2, tc.env...)
			_, res, err := m.meshDeploy(t, context.Background(), stack, file, DeployOptions{RollbackOnFailure: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.Converged || !res.RolledBack {
				t.Fatalf("converged %v, rolled back %v; want a failure rolled back", res.Converged, res.RolledBack)
			}
			if f := strings.Join(res.Failures(), "; "); !containsAny(f, strings.Split(tc.want, "|")) {
				t.Errorf("failure %q, want it to say %q", f, tc.want)
			}
			if len(res.Rollback) != 1 || res.Rollback[0].Phase != PhaseRolledBack {
				t.Fatalf("rollback: %+v", res.Rollback)
			}
			// Rolled back by the same definition: the previous version's
			// instances pass again (at least one of the old ones never
			// left: parallelism 1, start-first).
			after := m.passing(t, name)
			if len(after) != 2 {
				t.Errorf("after the rollback: %d passing instances, want 2", len(after))
			}
			kept := 0
			for _, id := range before {
				for _, a := range after {
					if a == id {
						kept++
					}
				}
			}
			if kept == 0 {
				t.Errorf("no instance of v1 survived the bad update (before %v, after %v): the gate let it take all capacity", before, after)
			}
		})
	}

	t.Run("Ctrl-C with --rollback-on-failure rolls back", func(t *testing.T) {
		t.Parallel()
		name := "it.int." + strconv.FormatInt(time.Now().UnixNano(), 36)
		stack, dir := base(t, name)
		file := m.greeterFile(t, dir, imgGood, name, 2, "MICRO_REGISTRY_ADDRESS=consul:9999")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rep := &cancelOnEvent{t: t, match: "updated service", cancel: cancel}
		_, res, err := m.meshDeploy(t, ctx, stack, file, DeployOptions{RollbackOnFailure: true, Reporter: rep})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want the interruption", err)
		}
		if res == nil || !res.Interrupted || !res.RolledBack {
			t.Fatalf("result %+v: want interrupted and rolled back", res)
		}
		if len(res.Rollback) != 1 || res.Rollback[0].Phase != PhaseRolledBack {
			t.Fatalf("rollback: %+v", res.Rollback)
		}
		if !strings.Contains(res.Services[0].Message, "updated; interrupted while") {
			t.Errorf("message %q does not say what was done", res.Services[0].Message)
		}
	})

	for _, promote := range []bool{false, true} {
		t.Run(fmt.Sprintf("canary (check passes: %v)", promote), func(t *testing.T) {
			t.Parallel()
			name := "it.can." + strconv.FormatInt(time.Now().UnixNano(), 36)
			stack, dir := base(t, name)
			file := m.greeterFile(t, dir, "microctl/greeter:err500", name, 2)
			p, err := planFile(t, m.cli, stack, file, PlanOptions{Mesh: m.meshOpts()})
			if err != nil {
				t.Fatal(err)
			}
			checked := false
			cres, err := RunCanary(context.Background(), m.cli, p, CanaryOptions{Replicas: 1, Mesh: m.meshOpts(), Reporter: logReporter{t},
				Timeout: 2 * time.Minute, Check: func(context.Context) error {
					checked = true
					// While the canary serves, its instance is one of the
					// service's passing instances, next to v1's two.
					if n := len(m.passing(t, name)); n != 3 {
						return fmt.Errorf("%d passing instances, want 3", n)
					}
					if !promote {
						return errors.New("the bench through the gateway saw 500s")
					}
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			if !checked || cres.Passed != promote {
				t.Fatalf("checked %v, result %+v; want passed=%v", checked, cres, promote)
			}
			if !promote && !strings.Contains(cres.Reason, "canary check failed: the bench") {
				t.Errorf("reason %q", cres.Reason)
			}
			// The canary is gone either way, and v1 untouched.
			rows, err := ListServices(context.Background(), m.cli, stack)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 1 || rows[0].Image != imgGood {
				t.Errorf("after the canary: %+v; want only greeter, still %s", rows, imgGood)
			}
			if promote {
				res, err := Deploy(context.Background(), m.cli, p, DeployOptions{Timeout: 2 * time.Minute, Reporter: logReporter{t}, Mesh: m.meshOpts()})
				if err != nil {
					t.Fatal(err)
				}
				mustConverge(t, res)
			}
		})
	}

	t.Run("ps finds silent tasks and orphan instances", func(t *testing.T) {
		t.Parallel()
		name := "it.ps." + strconv.FormatInt(time.Now().UnixNano(), 36)
		stack := newStack(t, m.cli)
		// Declared but never registering: no gate (--no-mesh), so the
		// deploy converges on Swarm's word and ps must find the gap.
		file := m.greeterFile(t, "", imgGood, name, 1, "MICRO_REGISTRY_ADDRESS=consul:9999")
		p, err := planFile(t, m.cli, stack, file, PlanOptions{Mesh: MeshOptions{Off: true}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Deploy(context.Background(), m.cli, p, DeployOptions{Timeout: time.Minute, Reporter: logReporter{t}, Mesh: MeshOptions{Off: true}})
		if err != nil {
			t.Fatal(err)
		}
		mustConverge(t, res)
		// An orphan: an instance of the name at an address no task has.
		reg := registry.NewRegistrar(m.consul, registry.Instance{Name: name, ID: name + "-orphan", Address: "10.254.254.254", Port: 8080})
		if err := reg.Register(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = reg.Deregister(context.Background()) })
		rows, err := ListServices(context.Background(), m.cli, stack)
		if err != nil {
			t.Fatal(err)
		}
		n, err := AddMesh(context.Background(), m.cli, m.consul, rows)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || rows[0].Mesh == nil {
			t.Fatalf("%d problems, mesh %+v; want a silent task and an orphan", n, rows[0].Mesh)
		}
		kinds := map[string]int{}
		for _, p := range rows[0].Mesh.Problems {
			kinds[p.Kind]++
		}
		if kinds["silent-task"] != 1 || kinds["orphan-instance"] != 1 {
			t.Errorf("problems %+v", rows[0].Mesh.Problems)
		}
	})
}

// cancelOnEvent cancels the deploy when an event matches, as Ctrl-C would.
type cancelOnEvent struct {
	t      *testing.T
	match  string
	cancel func()
	once   sync.Once
}

func (r *cancelOnEvent) States([]State) {}
func (r *cancelOnEvent) Event(msg string) {
	r.t.Log(msg)
	if strings.Contains(msg, r.match) {
		r.once.Do(func() { time.AfterFunc(2*time.Second, r.cancel) })
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
