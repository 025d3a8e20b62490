package mesh

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// The gate against the real engine and a real Consul: one Consul runs as a
// service of the test's own overlay network (as in the demo stack, so the
// greeters reach it by name), published on a free host port for the test;
// each subtest runs its own greeter service under its own Consul name, in
// parallel.

type meshEnv struct {
	cli    client.APIClient
	consul *registry.Client
	net    string
	prefix string
}

var meshImgs = []string{"microctl/greeter:dev", "microctl/greeter:critical", "microctl/consul:dev"}

func startMeshEnv(t *testing.T) *meshEnv {
	t.Helper()
	cli := testenv.Manager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, img := range meshImgs {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			testenv.Missing(t, "image %s is missing (run make images): %v", img, err)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &meshEnv{cli: cli, prefix: "itmesh" + hex.EncodeToString(b)}
	e.net = e.prefix + "_net"
	if _, err := cli.NetworkCreate(ctx, e.net, network.CreateOptions{Driver: "overlay", Attachable: true,
		Labels: map[string]string{"com.docker.stack.namespace": e.prefix}}); err != nil {
		t.Fatalf("network: %v", err)
	}
	t.Cleanup(func() { e.cleanup(t) })

	port := freePort(t)
	replicas := uint64(1)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: e.prefix + "_consul", Labels: map[string]string{"com.docker.stack.namespace": e.prefix}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "microctl/consul:dev",
				Args: []string{"agent", "-dev", "-client", "0.0.0.0", "-log-level", "warn"}},
			Networks: []swarm.NetworkAttachmentConfig{{Target: e.net, Aliases: []string{"consul"}}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{{TargetPort: 8500, PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost}}},
	}
	if _, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{}); err != nil {
		t.Fatalf("consul service: %v", err)
	}
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:" + strconv.Itoa(port)
	c, err := registry.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.consul = c
	waitFor(t, 90*time.Second, "Consul's leader", func(ctx context.Context) (bool, string) {
		l, err := c.Leader(ctx)
		return err == nil && l != "", fmt.Sprint(err)
	})
	return e
}

func (e *meshEnv) cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	svcs, err := e.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.stack.namespace="+e.prefix))})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, s := range svcs {
		if err := e.cli.ServiceRemove(ctx, s.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	// The network goes once the services' tasks are gone.
	for ctx.Err() == nil {
		if err := e.cli.NetworkRemove(ctx, e.net); err == nil || strings.Contains(err.Error(), "not found") {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("cleanup: network %s still in use", e.net)
}

// greeter creates a greeter service registering as name.
func (e *meshEnv) greeter(t *testing.T, suffix, image, name string, replicas uint64, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env = append([]string{"MICRO_SERVER_NAME=" + name, "MICRO_REGISTRY_ADDRESS=consul:8500",
		"MICRO_REGISTER_TTL=5", "MICRO_REGISTER_INTERVAL=1"}, env...)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: e.prefix + "_" + suffix, Labels: map[string]string{"com.docker.stack.namespace": e.prefix}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Env: env, StopGracePeriod: ptr(5 * time.Second)},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: e.net}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: ptr(time.Second)},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	r, err := e.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("create %s: %v", suffix, err)
	}
	return r.ID
}

func ptr[T any](v T) *T { return &v }

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls cond every 500ms until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	last := ""
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		ok, msg := cond(cctx)
		ccancel()
		if ok {
			return
		}
		last = msg
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s (last: %s)", what, bound, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// gateUntil runs the checker on svc until the verdict is final or the
// bound passes, and returns the last result.
func gateUntil(t *testing.T, c *Checker, svc Service, bound time.Duration, stop func(Result) bool) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	var last Result
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		r, err := c.Check(cctx, svc)
		ccancel()
		if err == nil {
			last = r
			for _, rm := range r.Removed {
				t.Logf("deregistered %s via %s", rm.Instance, rm.Via)
			}
			if stop(r) {
				return r
			}
		} else {
			t.Logf("check: %v", err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gate on %s: no final verdict within %s (last: %s: %s)", svc.Name, bound, last.Verdict, last.Reason)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// final is a verdict with Swarm's half done too: n tasks running (the
// gate alone holds nothing against a service with no task yet).
func final(n int) func(Result) bool {
	return func(r Result) bool { return r.Verdict == Failed || r.Verdict == Converged && len(r.Tasks) == n }
}

func TestGateIntegration(t *testing.T) {
	e := startMeshEnv(t)
	opts := CheckerOptions{Options: Options{MinHealthy: 3 * time.Second, HealthyDeadline: 20 * time.Second}}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		name := e.prefix + ".good"
		id := e.greeter(t, "good", "microctl/greeter:dev", name, 2)
		c := NewChecker(e.cli, e.consul, opts)
		r := gateUntil(t, c, Service{Name: "good", ID: id, Consul: name, Declared: true}, 90*time.Second, func(r Result) bool {
			return r.Verdict == Failed || (r.Verdict == Converged && len(r.Tasks) == 2)
		})
		if r.Verdict != Converged {
			t.Fatalf("verdict %s: %s", r.Verdict, r.Reason)
		}
		for _, ts := range r.Tasks {
			if ts.Instance == "" || ts.Status != Passing || !ts.Healthy {
				t.Errorf("task %+v: want one passing, healthy instance", ts)
			}
		}
		// Inference finds the same name from the tasks' addresses alone.
		svc, inf, err := Resolve(context.Background(), e.cli, e.consul, "good", id, nil)
		if err != nil || svc.Consul != name {
			t.Errorf("Resolve = %+v (%s), %v; want %s inferred", svc, inf, err, name)
		}
	})

	t.Run("never registers", func(t *testing.T) {
		t.Parallel()
		name := e.prefix + ".noreg"
		// Nothing listens on port 1 of the Consul container.
		id := e.greeter(t, "noreg", "microctl/greeter:dev", name, 2, "MICRO_REGISTRY_ADDRESS=consul:1")
		c := NewChecker(e.cli, e.consul, opts)
		r := gateUntil(t, c, Service{Name: "noreg", ID: id, Consul: name, Declared: true}, 120*time.Second, final(2))
		// On a loaded node the second task may start well after the first:
		// at the first one's deadline it is "1 not registered", later
		// "none registered".
		if r.Verdict != Failed || !strings.Contains(r.Reason, "registered in Consul "+name+" within 20s") ||
			!strings.Contains(r.Reason, "not registered") && !strings.Contains(r.Reason, "none registered") {
			t.Fatalf("verdict %s: %q; want failed, not registered", r.Verdict, r.Reason)
		}
	})

	t.Run("goes critical", func(t *testing.T) {
		t.Parallel()
		name := e.prefix + ".critical"
		id := e.greeter(t, "critical", "microctl/greeter:critical", name, 1)
		c := NewChecker(e.cli, e.consul, CheckerOptions{Options: Options{MinHealthy: 30 * time.Second, HealthyDeadline: 60 * time.Second}})
		r := gateUntil(t, c, Service{Name: "critical", ID: id, Consul: name, Declared: true}, 120*time.Second, final(1))
		if r.Verdict != Failed || !strings.Contains(r.Reason, "went critical") {
			t.Fatalf("verdict %s: %q; want failed, went critical", r.Verdict, r.Reason)
		}
	})

	t.Run("stale registration of a killed task is removed", func(t *testing.T) {
		t.Parallel()
		name := e.prefix + ".stale"
		id := e.greeter(t, "stale", "microctl/greeter:dev", name, 1)
		c := NewChecker(e.cli, e.consul, opts)
		svc := Service{Name: "stale", ID: id, Consul: name, Declared: true}
		r := gateUntil(t, c, svc, 90*time.Second, final(1))
		if r.Verdict != Converged || len(r.Tasks) != 1 {
			t.Fatalf("before the kill: %s: %s", r.Verdict, r.Reason)
		}
		victim := r.Tasks[0].Instance
		// SIGKILL: the process cannot deregister; Swarm starts a new task.
		killTask(t, e.cli, r.Tasks[0].Task)
		r = gateUntil(t, c, svc, 120*time.Second, func(r Result) bool {
			return r.Verdict == Failed || (r.Verdict == Converged && len(r.Tasks) == 1 && r.Tasks[0].Instance != victim)
		})
		if r.Verdict != Converged {
			t.Fatalf("after the kill: %s: %s", r.Verdict, r.Reason)
		}
		ins, _, _, err := e.consul.ServiceInstances(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range ins {
			if in.ID == victim {
				t.Errorf("the killed task's instance %s is still registered", victim)
			}
		}
	})
}

// killTask kills a task's container with SIGKILL.
func killTask(t *testing.T, cli client.APIClient, taskID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	task, _, err := cli.TaskInspectWithRaw(ctx, taskID)
	if err != nil {
		t.Fatal(err)
	}
	if task.Status.ContainerStatus == nil || task.Status.ContainerStatus.ContainerID == "" {
		t.Fatalf("task %s has no container", taskID)
	}
	if err := cli.ContainerKill(ctx, task.Status.ContainerStatus.ContainerID, "KILL"); err != nil {
		t.Fatal(err)
	}
}
