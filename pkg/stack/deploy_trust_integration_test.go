package stack

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
)

// Issue 10's deploy cases on the real engine: a redeploy of an unchanged
// but crash-looping service is not converged; what the plan can check it
// checks before creating anything; what the engine refuses leaves nothing
// the deploy created; two deploys of one stack do not run at once.

func TestUnchangedButNotRunning(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	file := stackFile(t, "", `
services:
  app:
    image: microctl/greeter:crash
    deploy:
      restart_policy: {condition: any, delay: 1s}
      # A long stability period: on a loaded node the engine may report
      # a task that exits at once as running for seconds.
      update_config: {monitor: 15s}
`)
	_, res := deployFile(t, cli, stack, file, PlanOptions{}, DeployOptions{Timeout: 45 * time.Second})
	if res.Converged {
		t.Fatal("a crashing service converged")
	}
	p, res := deployFile(t, cli, stack, file, PlanOptions{}, DeployOptions{Timeout: 45 * time.Second})
	if p.Services[0].Action != ActionUnchanged {
		t.Fatalf("plan: %s, want unchanged", p.Services[0].Action)
	}
	if res.Converged || res.Services[0].Phase.OK() {
		t.Fatalf("redeploy of a crash-looping service: converged %v, phase %s; want not converged", res.Converged, res.Services[0].Phase)
	}
}

func TestPlanRefusesWhatTheEngineWould(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	for _, tc := range []struct{ name, svc, want string }{
		{"image reference", "image: Microctl/Greeter:dev", "must be lowercase"},
		{"placement constraint", "image: microctl/greeter:dev\n    deploy:\n      placement:\n        constraints: [\"node.role=manager\"]", "expected KEY==VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stack := newStack(t, cli)
			file := stackFile(t, "", "services:\n  app:\n    "+tc.svc+"\n    networks: [own]\nnetworks:\n  own: {}\n")
			_, err := planFile(t, cli, stack, file, PlanOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("plan: %v, want %q", err, tc.want)
			}
			assertNoNetwork(t, stack)
		})
	}
}

func TestEngineRefusalLeavesNothing(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	// The engine refuses a health check interval under 1ms at create; the
	// plan does not know that rule, so the deploy gets as far as creating
	// the stack's network.
	file := stackFile(t, "", `
services:
  app:
    image: microctl/greeter:dev
    healthcheck:
      test: ["CMD", "/greeter", "-healthcheck"]
      interval: 100us
    networks: [own]
networks:
  own: {}
`)
	p, err := planFile(t, cli, stack, file, PlanOptions{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	_, err = Deploy(context.Background(), cli, p, DeployOptions{Timeout: time.Minute, Reporter: logReporter{t}})
	if err == nil {
		t.Fatal("the engine accepted a 100us health check interval: this test needs another refusal")
	}
	t.Logf("refused: %v", err)
	assertNoNetwork(t, stack)
	rows, err := ListServices(context.Background(), cli, stack)
	if err == nil && len(rows) > 0 {
		t.Errorf("services left behind: %+v", rows)
	}
}

func assertNoNetwork(t *testing.T, stack string) {
	t.Helper()
	cli := manager(t)
	nets, err := cli.NetworkList(context.Background(), network.ListOptions{Filters: stackFilter(stack)})
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) > 0 {
		t.Errorf("network %s left behind", nets[0].Name)
	}
}

func TestConcurrentDeploysOfOneStack(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	dir := t.TempDir()
	file := stackFile(t, dir, `
services:
  app:
    image: microctl/greeter:dev
    environment: {GREETER_NO_REGISTER: "1"}
    deploy:
      replicas: 1
      update_config: {monitor: 1s}
`)
	var wg sync.WaitGroup
	results := make([]*Result, 2)
	errs := make([]error, 2)
	waited := make([]bool, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := planFile(t, cli, stack, file, PlanOptions{})
			if err != nil {
				errs[i] = err
				return
			}
			rep := &eventLog{t: t}
			results[i], errs[i] = Deploy(context.Background(), cli, p, DeployOptions{Timeout: 90 * time.Second, Reporter: rep})
			waited[i] = rep.saw("another deploy of stack " + stack + " is running")
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("deploy %d: %v", i, errs[i])
		}
		if !results[i].Converged {
			t.Errorf("deploy %d did not converge: %v", i, results[i].Failures())
		}
	}
	if waited[0] == waited[1] {
		t.Errorf("waited: %v; want exactly one deploy to wait for the other", waited)
	}
}

type eventLog struct {
	t      *testing.T
	mu     sync.Mutex
	events []string
}

func (r *eventLog) States([]State) {}
func (r *eventLog) Event(msg string) {
	r.t.Log(msg)
	r.mu.Lock()
	r.events = append(r.events, msg)
	r.mu.Unlock()
}
func (r *eventLog) saw(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}
