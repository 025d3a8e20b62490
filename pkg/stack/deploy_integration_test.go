package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/compose"
)

// Integration tests: real deploys on the shared swarm (testenv.Manager).
// Every test uses its own stack name, keeps update/monitor delays short so
// it takes seconds, and removes its stack at the end, also on failure.

const (
	imgGood  = "microctl/greeter:dev"
	imgCrash = "microctl/greeter:crash"
)

func manager(t *testing.T) client.APIClient {
	t.Helper()
	cli := testenv.Manager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, img := range []string{imgGood, imgCrash} {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			testenv.Missing(t, "image %s is missing (run make images): %v", img, err)
		}
	}
	return cli
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// newStack returns a unique stack name for the test and removes the stack
// when the test ends.
func newStack(t *testing.T, cli client.APIClient) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	base := nonName.ReplaceAllString(strings.ToLower(strings.TrimPrefix(t.Name(), "Test")), "")
	if len(base) > 14 {
		base = base[:14]
	}
	name := "it" + base + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := RemoveStack(ctx, cli, name, nil); err != nil {
			var nf *StackNotFoundError
			if !errors.As(err, &nf) {
				t.Errorf("cleanup of stack %s: %v", name, err)
			}
		}
	})
	return name
}

// stackFile writes a compose file into dir (a new temp dir when "").
func stackFile(t *testing.T, dir, content string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, "stack.yml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func planFile(t *testing.T, cli client.APIClient, stack, file string, po PlanOptions) (*Plan, error) {
	t.Helper()
	if po.ResolveImage == "" {
		po.ResolveImage = ResolveNever
	}
	return Prepare(context.Background(), func() (StackAPI, error) { return cli, nil }, PrepareOptions{
		Load: compose.LoadOptions{Files: []string{file}, Stack: stack, Env: []string{}},
		Plan: po,
	})
}

// logReporter writes progress into the test log, for when a test fails.
type logReporter struct{ t *testing.T }

func (r logReporter) States(states []State) {}
func (r logReporter) Event(msg string)      { r.t.Log(msg) }

func deployFile(t *testing.T, cli client.APIClient, stack, file string, po PlanOptions, do DeployOptions) (*Plan, *Result) {
	t.Helper()
	p, err := planFile(t, cli, stack, file, po)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if do.Timeout == 0 {
		do.Timeout = 90 * time.Second
	}
	if do.Reporter == nil {
		do.Reporter = logReporter{t}
	}
	do.Watch.Interval = 200 * time.Millisecond
	res, err := Deploy(context.Background(), cli, p, do)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return p, res
}

func mustConverge(t *testing.T, res *Result) {
	t.Helper()
	if !res.Converged {
		t.Fatalf("stack %s did not converge: %v", res.Stack, res.Failures())
	}
}

func actions(p *Plan) map[string]Action {
	out := map[string]Action{}
	for _, s := range p.Services {
		out[s.Name] = s.Action
	}
	return out
}

func inspect(t *testing.T, cli client.APIClient, name string) swarm.Service {
	t.Helper()
	s, _, err := cli.ServiceInspectWithRaw(context.Background(), name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatalf("inspect %s: %v", name, err)
	}
	return s
}

func tasksOf(t *testing.T, cli client.APIClient, service string) []swarm.Task {
	t.Helper()
	tasks, err := cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", service))})
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

func runningTaskIDs(t *testing.T, cli client.APIClient, service string) []string {
	var ids []string
	for _, task := range tasksOf(t, cli, service) {
		if task.DesiredState == swarm.TaskStateRunning {
			ids = append(ids, task.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

const twoServices = `
services:
  web:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
      GREETING: hello
    configs: [motd]
    secrets: [token]
    deploy:
      replicas: 2
      update_config: {monitor: 500ms}
  worker:
    image: microctl/greeter:dev
    command: ["--server_name", "worker"]
    environment:
      GREETER_NO_REGISTER: "1"
    networks: [back]
    deploy:
      update_config: {monitor: 500ms}
networks:
  back:
    driver: bridge
configs:
  motd:
    content: hello
secrets:
  token:
    file: ./token.txt
`

// TestRedeployUnchanged deploys a stack, then deploys the same file again:
// the plan must call every service unchanged, and no service may be
// updated (same spec version) nor any task replaced.
func TestRedeployUnchanged(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	file := stackFile(t, "", twoServices)
	p, res := deployFile(t, cli, stack, file, PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	if a := actions(p); a["web"] != ActionCreate || a["worker"] != ActionCreate {
		t.Fatalf("first plan: %v", a)
	}
	before := map[string]swarm.Service{}
	tasks := map[string][]string{}
	for _, n := range []string{"web", "worker"} {
		before[n] = inspect(t, cli, stack+"_"+n)
		tasks[n] = runningTaskIDs(t, cli, stack+"_"+n)
	}
	// Every resolve mode must leave an unchanged stack alone.
	for _, mode := range []ResolveImage{ResolveNever, ResolveChanged, ResolveAlways} {
		p, res = deployFile(t, cli, stack, file, PlanOptions{ResolveImage: mode}, DeployOptions{})
		mustConverge(t, res)
		for _, s := range p.Services {
			if s.Action != ActionUnchanged {
				t.Errorf("resolve %s: redeploy plans %s for %s: %v", mode, s.Action, s.Name, s.Changes)
			}
		}
		for _, o := range p.Objects {
			if o.Action != ActionUnchanged {
				t.Errorf("resolve %s: redeploy plans %s for %s %s", mode, o.Action, o.Kind, o.Name)
			}
		}
	}
	for _, n := range []string{"web", "worker"} {
		after := inspect(t, cli, stack+"_"+n)
		if after.Version.Index != before[n].Version.Index {
			t.Errorf("%s: spec version %d -> %d: the service was updated", n, before[n].Version.Index, after.Version.Index)
		}
		if got := runningTaskIDs(t, cli, stack+"_"+n); !slices.Equal(got, tasks[n]) {
			t.Errorf("%s: tasks %v -> %v: tasks were replaced", n, tasks[n], got)
		}
	}
	// The bridge network became an overlay.
	nets, err := cli.NetworkList(context.Background(), network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", stack+"_back"))})
	if err != nil || len(nets) != 1 || nets[0].Driver != "overlay" || nets[0].Labels[compose.LabelNamespace] != stack {
		t.Errorf("network %s_back: %+v (err %v)", stack, nets, err)
	}
}

// TestStartFirstUpdate changes a service that updates start-first: the
// plan lists the changed field, the deploy waits for Swarm's update, and
// every old task was stopped only after a new one was running.
func TestStartFirstUpdate(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	dir := t.TempDir()
	tmpl := `
services:
  app:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
      COLOR: %s
    deploy:
      replicas: 2
      update_config: {order: start-first, monitor: 500ms, parallelism: 1}
`
	_, res := deployFile(t, cli, stack, stackFile(t, dir, strings.Replace(tmpl, "%s", "blue", 1)), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	old := runningTaskIDs(t, cli, stack+"_app")
	p, res := deployFile(t, cli, stack, stackFile(t, dir, strings.Replace(tmpl, "%s", "green", 1)), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	sp := p.Services[0]
	if sp.Action != ActionUpdate || len(sp.Changes) != 1 || sp.Changes[0].Field != "environment" {
		t.Fatalf("plan: %s %v, want update [environment]", sp.Action, sp.Changes)
	}
	svc := inspect(t, cli, stack+"_app")
	if svc.UpdateStatus == nil || svc.UpdateStatus.State != swarm.UpdateStateCompleted {
		t.Fatalf("update status %+v, want completed", svc.UpdateStatus)
	}
	var firstNewRunning time.Time
	byID := map[string]swarm.Task{}
	for _, task := range tasksOf(t, cli, stack+"_app") {
		byID[task.ID] = task
		if !slices.Contains(old, task.ID) && task.DesiredState == swarm.TaskStateRunning {
			if !slices.Contains(task.Spec.ContainerSpec.Env, "COLOR=green") {
				t.Errorf("new task %s env %v", task.ID, task.Spec.ContainerSpec.Env)
			}
			if started := task.Status.Timestamp; firstNewRunning.IsZero() || started.Before(firstNewRunning) {
				firstNewRunning = started
			}
		}
	}
	for _, id := range old {
		task := byID[id]
		if task.DesiredState != swarm.TaskStateShutdown {
			t.Errorf("old task %s desired %s", id, task.DesiredState)
		}
		if task.Status.Timestamp.Before(firstNewRunning) {
			t.Errorf("old task %s stopped at %s, before the first new task ran (%s): not start-first", id, task.Status.Timestamp, firstNewRunning)
		}
	}
}

// TestRollbackOnFailure updates a running service to an image that crashes
// on start and adds a service, with RollbackOnFailure: the update fails,
// the service runs its previous image again, and the new service is gone.
func TestRollbackOnFailure(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	dir := t.TempDir()
	base := `
services:
  app:
    image: IMAGE
    environment:
      GREETER_NO_REGISTER: "1"
    deploy:
      replicas: 2
      update_config: {monitor: 1s, order: stop-first}
      rollback_config: {monitor: 500ms}
      restart_policy: {delay: 200ms}
`
	_, res := deployFile(t, cli, stack, stackFile(t, dir, strings.Replace(base, "IMAGE", imgGood, 1)), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	bad := strings.Replace(base, "IMAGE", imgCrash, 1) + `
  extra:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
    configs: [extra_conf]
configs:
  extra_conf:
    content: new
`
	p, res := deployFile(t, cli, stack, stackFile(t, dir, bad), PlanOptions{}, DeployOptions{RollbackOnFailure: true})
	if a := actions(p); a["app"] != ActionUpdate || a["extra"] != ActionCreate {
		t.Fatalf("plan %v", a)
	}
	if res.Converged || !res.RolledBack {
		t.Fatalf("converged=%v rolled_back=%v, want a rolled back failure", res.Converged, res.RolledBack)
	}
	if f := strings.Join(res.Failures(), "; "); !strings.Contains(f, "app:") || !strings.Contains(f, "non-zero exit") {
		t.Errorf("failures %q should name app and its task error", f)
	}
	svc := inspect(t, cli, stack+"_app")
	if img := svc.Spec.TaskTemplate.ContainerSpec.Image; img != imgGood {
		t.Errorf("after rollback the image is %s, want %s", img, imgGood)
	}
	running := 0
	for _, task := range tasksOf(t, cli, stack+"_app") {
		if task.DesiredState == swarm.TaskStateRunning && task.Status.State == swarm.TaskStateRunning {
			running++
			if task.Spec.ContainerSpec.Image != imgGood {
				t.Errorf("running task %s has image %s", task.ID, task.Spec.ContainerSpec.Image)
			}
		}
	}
	if running != 2 {
		t.Errorf("%d tasks running after the rollback, want 2", running)
	}
	if _, _, err := cli.ServiceInspectWithRaw(context.Background(), stack+"_extra", swarm.ServiceInspectOptions{}); err == nil {
		t.Errorf("service extra, created by the failed deploy, still exists")
	}
	cfgs, _ := cli.ConfigList(context.Background(), swarm.ConfigListOptions{Filters: stackFilter(stack)})
	for _, c := range cfgs {
		if strings.HasPrefix(c.Spec.Name, stack+"_extra_conf") {
			t.Errorf("config %s, created by the failed deploy, still exists", c.Spec.Name)
		}
	}
}

// TestDependsOnOrder: a job must complete before a service that needs it,
// and a healthy service must be healthy before its dependent is created.
func TestDependsOnOrder(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	file := stackFile(t, "", `
services:
  db:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
    healthcheck:
      test: ["CMD", "/greeter", "-healthcheck"]
      interval: 300ms
      start_period: 300ms
    deploy:
      update_config: {monitor: 300ms}
  migrate:
    image: microctl/greeter:dev
    command: ["-h"]
    deploy:
      mode: replicated-job
    depends_on:
      db: {condition: service_healthy}
  api:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
    deploy:
      update_config: {monitor: 300ms}
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
`)
	p, res := deployFile(t, cli, stack, file, PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	var order []string
	for _, s := range p.Services {
		order = append(order, s.Name)
	}
	if !slices.Equal(order, []string{"db", "migrate", "api"}) {
		t.Errorf("plan order %v", order)
	}
	// When each dependency became ready, from its tasks' timestamps.
	readyAt := func(service string, state swarm.TaskState) time.Time {
		var at time.Time
		for _, task := range tasksOf(t, cli, stack+"_"+service) {
			if task.Status.State == state && (at.IsZero() || task.Status.Timestamp.Before(at)) {
				at = task.Status.Timestamp
			}
		}
		if at.IsZero() {
			t.Fatalf("%s has no task in state %s", service, state)
		}
		return at
	}
	dbHealthy := readyAt("db", swarm.TaskStateRunning) // Swarm reports running once healthy
	migrated := readyAt("migrate", swarm.TaskStateComplete)
	migrateCreated := inspect(t, cli, stack+"_migrate").CreatedAt
	apiCreated := inspect(t, cli, stack+"_api").CreatedAt
	if migrateCreated.Before(dbHealthy) {
		t.Errorf("migrate created at %s, before db was healthy at %s", migrateCreated, dbHealthy)
	}
	if apiCreated.Before(migrated) {
		t.Errorf("api created at %s, before migrate completed at %s", apiCreated, migrated)
	}
	for _, s := range res.Services {
		want := PhaseConverged
		if s.Name == "migrate" {
			want = PhaseCompleted
		}
		if s.Phase != want {
			t.Errorf("%s ended %s, want %s", s.Name, s.Phase, want)
		}
	}
}

// TestConfigVersions changes a config's content twice: each deploy switches
// the service to a new version; the version before the previous one is
// removed, the previous one is kept for a rollback.
func TestConfigVersions(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	dir := t.TempDir()
	file := stackFile(t, dir, `
services:
  app:
    image: microctl/greeter:dev
    environment:
      GREETER_NO_REGISTER: "1"
    configs:
      - source: conf
        target: /etc/app.conf
    deploy:
      update_config: {monitor: 300ms}
configs:
  conf:
    file: ./app.conf
`)
	var names []string
	for _, content := range []string{"v1", "v2", "v3"} {
		if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, res := deployFile(t, cli, stack, file, PlanOptions{}, DeployOptions{})
		mustConverge(t, res)
		svc := inspect(t, cli, stack+"_app")
		refs := svc.Spec.TaskTemplate.ContainerSpec.Configs
		if len(refs) != 1 || refs[0].ConfigName != compose.VersionedName(stack+"_conf", []byte("\x00"+content)) {
			t.Fatalf("content %s: service uses %+v", content, refs)
		}
		names = append(names, refs[0].ConfigName)
	}
	cfgs, err := cli.ConfigList(context.Background(), swarm.ConfigListOptions{Filters: stackFilter(stack)})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, c := range cfgs {
		have[c.Spec.Name] = true
	}
	if have[names[0]] || !have[names[1]] || !have[names[2]] || len(have) != 2 {
		t.Errorf("configs %v: want %s removed, %s (previous spec) and %s kept", have, names[0], names[1], names[2])
	}
}

// TestPrune removes a service, and the network only it used, when the file
// drops it; without --prune both stay.
func TestPrune(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	dir := t.TempDir()
	both := `
services:
  keep:
    image: microctl/greeter:dev
    environment: {GREETER_NO_REGISTER: "1"}
    deploy: {update_config: {monitor: 300ms}}
  drop:
    image: microctl/greeter:dev
    environment: {GREETER_NO_REGISTER: "1"}
    networks: [side]
    deploy: {update_config: {monitor: 300ms}}
networks:
  side:
`
	_, res := deployFile(t, cli, stack, stackFile(t, dir, both), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	one := strings.SplitN(both, "  drop:", 2)[0]
	p, res := deployFile(t, cli, stack, stackFile(t, dir, one), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	if len(p.Services) != 1 || !strings.Contains(strings.Join(p.Warnings, "\n"), stack+"_drop is in stack") {
		t.Fatalf("without --prune: %v %v", actions(p), p.Warnings)
	}
	p, res = deployFile(t, cli, stack, stackFile(t, dir, one), PlanOptions{Prune: true}, DeployOptions{})
	mustConverge(t, res)
	if a := actions(p); a["drop"] != ActionRemove || a["keep"] != ActionUnchanged {
		t.Fatalf("with --prune: %v", a)
	}
	if _, _, err := cli.ServiceInspectWithRaw(context.Background(), stack+"_drop", swarm.ServiceInspectOptions{}); err == nil {
		t.Error("service drop still exists")
	}
	nets, _ := cli.NetworkList(context.Background(), network.ListOptions{Filters: stackFilter(stack)})
	for _, n := range nets {
		if n.Name == stack+"_side" {
			t.Errorf("network %s still exists", n.Name)
		}
	}
}

// TestRemoveStackWaits: when RemoveStack returns, no service, task or
// network of the stack is left.
func TestRemoveStackWaits(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	_, res := deployFile(t, cli, stack, stackFile(t, "", twoServices), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	rr, err := RemoveStack(context.Background(), cli, stack, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Services) != 2 || len(rr.Networks) != 2 || len(rr.Configs) != 1 || len(rr.Secrets) != 1 {
		t.Errorf("removed %+v", rr)
	}
	ctx := context.Background()
	f := stackFilter(stack)
	svcs, _ := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	tasks, _ := cli.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	nets, _ := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	live := 0
	for _, task := range tasks {
		if !taskFinished(task.Status.State) {
			live++
		}
	}
	if len(svcs)+live+len(nets) != 0 {
		t.Errorf("left after rm: %d services, %d running tasks, %d networks", len(svcs), live, len(nets))
	}
	if _, err := RemoveStack(ctx, cli, stack, nil); err == nil || !strings.Contains(err.Error(), "nothing found in stack") {
		t.Errorf("second rm: %v", err)
	}
}

// TestDeployBadInput: what the engine would refuse or could never run is
// caught, and a plan that fails creates nothing.
func TestDeployBadInput(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	t.Run("unknown external network", func(t *testing.T) {
		stack := newStack(t, cli)
		_, err := planFile(t, cli, stack, stackFile(t, "", `
services:
  a:
    image: microctl/greeter:dev
    networks: [nowhere]
networks:
  nowhere:
    external: true
    name: microctl-no-such-network
`), PlanOptions{})
		var ne *NetworkError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), "microctl-no-such-network is declared external but does not exist") {
			t.Fatalf("got %v", err)
		}
		svcs, _ := cli.ServiceList(context.Background(), swarm.ServiceListOptions{Filters: stackFilter(stack)})
		nets, _ := cli.NetworkList(context.Background(), network.ListOptions{Filters: stackFilter(stack)})
		if len(svcs)+len(nets) != 0 {
			t.Errorf("a failed plan created %d services and %d networks", len(svcs), len(nets))
		}
	})
	t.Run("port taken by another stack", func(t *testing.T) {
		a, b := newStack(t, cli), newStack(t, cli)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		file := func(mode string) string {
			return stackFile(t, "", `
services:
  a:
    image: microctl/greeter:dev
    environment: {GREETER_NO_REGISTER: "1"}
    ports: [{target: 8080, published: `+port+`, mode: `+mode+`}]
`)
		}
		_, res := deployFile(t, cli, a, file("host"), PlanOptions{}, DeployOptions{Detach: true})
		if res.Stack != a {
			t.Fatal(res)
		}
		// Swarm would refuse an ingress port another service has.
		_, err = planFile(t, cli, b, file("ingress"), PlanOptions{})
		if err == nil || !strings.Contains(err.Error(), "already published by service "+a+"_a") {
			t.Errorf("ingress: got %v", err)
		}
		// Two host-mode ports clash only on a node running both.
		p, err := planFile(t, cli, b, file("host"), PlanOptions{})
		if err != nil || !strings.Contains(strings.Join(p.Warnings, "\n"), "also published in host mode by service "+a+"_a") {
			t.Errorf("host: %v %v", err, p)
		}
	})
	t.Run("image the engine lacks", func(t *testing.T) {
		stack := newStack(t, cli)
		p, res := deployFile(t, cli, stack, stackFile(t, "", `
services:
  ghost:
    image: microctl/no-such-image:dev
`), PlanOptions{}, DeployOptions{})
		if !strings.Contains(strings.Join(p.Warnings, "\n"), "microctl/no-such-image:dev is not on this engine") {
			t.Errorf("plan warnings %v", p.Warnings)
		}
		if res.Converged || !strings.Contains(strings.Join(res.Failures(), ";"), "No such image") {
			t.Errorf("converged=%v failures=%v, want a No such image failure", res.Converged, res.Failures())
		}
	})
}

// TestDockerStackCompat: a stack deployed by docker stack deploy is
// unchanged for microctl's plan, and docker stack ps works on microctl's.
func TestDockerStackCompat(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	docker, err := exec.LookPath("docker")
	var out []byte
	if err != nil {
		testenv.Missing(t, "the docker CLI is not on PATH")
	}
	stack := newStack(t, cli)
	file := stackFile(t, "", `
version: "3.8"
services:
  web:
    image: microctl/greeter:dev
    command: ["--server_name", "web"]
    environment:
      GREETER_NO_REGISTER: "1"
    healthcheck:
      test: ["CMD", "/greeter", "-healthcheck"]
      interval: 2s
    deploy:
      replicas: 2
      labels: {tier: front}
      update_config: {parallelism: 2, order: start-first, monitor: 1s}
      restart_policy: {condition: on-failure, delay: 1s}
      resources:
        limits: {cpus: "0.5", memory: 64M}
      placement:
        constraints: [node.role == manager]
  plain:
    image: microctl/greeter
    networks: [front, back]
    stop_grace_period: 3s
networks:
  front:
  back:
    attachable: true
`)
	out, err = exec.Command(docker, "stack", "deploy", "--resolve-image", "never", "-c", file, stack).CombinedOutput()
	if err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	p, err := planFile(t, cli, stack, file, PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Services {
		if s.Action != ActionUnchanged {
			t.Errorf("%s deployed by docker stack: plan says %s %v", s.Name, s.Action, s.Changes)
		}
	}
	res, err := Deploy(context.Background(), cli, p, DeployOptions{Detach: true})
	if err != nil || res.Stack != stack {
		t.Fatal(err)
	}
	out, err = exec.Command(docker, "stack", "ps", "--format", "{{.Name}}", stack).CombinedOutput()
	if err != nil || !strings.Contains(string(out), stack+"_web.1") {
		t.Errorf("docker stack ps: %v\n%s", err, out)
	}
}

// TestScaleAndRollbackService scales a service, then rolls it back.
func TestScaleAndRollbackService(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	stack := newStack(t, cli)
	_, res := deployFile(t, cli, stack, stackFile(t, "", `
services:
  app:
    image: microctl/greeter:dev
    environment: {GREETER_NO_REGISTER: "1"}
    deploy:
      update_config: {monitor: 300ms}
      rollback_config: {monitor: 300ms}
`), PlanOptions{}, DeployOptions{})
	mustConverge(t, res)
	wo := WaitOptions{Timeout: time.Minute, Watch: WatchOptions{Interval: 200 * time.Millisecond}}
	states, err := Scale(context.Background(), cli, map[string]uint64{stack + "_app": 3}, wo)
	if err != nil || len(states) != 1 || states[0].Phase != PhaseConverged || states[0].Running != 3 {
		t.Fatalf("scale: %v %+v", err, states)
	}
	st, err := RollbackService(context.Background(), cli, stack+"_app", wo)
	if err != nil || st.Phase != PhaseRolledBack || st.Running != 1 {
		t.Fatalf("rollback: %v %+v", err, st)
	}
	if _, err := Scale(context.Background(), cli, map[string]uint64{stack + "_nope": 1}, wo); err == nil || !strings.Contains(err.Error(), "no such service") {
		t.Errorf("scale of a missing service: %v", err)
	}
}

// TestRoundTripTestdata deploys the golden conversion files (without
// waiting: some of their tasks cannot run here) and plans them again:
// every field the converter writes must come back from the engine in a
// form the plan calls unchanged.
func TestRoundTripTestdata(t *testing.T) {
	t.Parallel()
	cli := manager(t)
	for _, name := range []string{"full", "modes", "ports", "volumes", "unsupported"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("../compose/testdata/convert", name+".yml"))
			if err != nil {
				t.Fatal(err)
			}
			// Published ports 1808N become free ones, so parallel runs and
			// other users of the engine do not collide.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			base := l.Addr().(*net.TCPAddr).Port / 10 * 10
			l.Close()
			if base > 65000 {
				base = 40000
			}
			content := regexp.MustCompile(`1808(\d)`).ReplaceAllStringFunc(string(b), func(m string) string {
				return fmt.Sprint(base + int(m[4]-'0'))
			})
			abs, _ := filepath.Abs("../compose/testdata/convert")
			content = strings.ReplaceAll(content, "./app.conf", filepath.Join(abs, "app.conf"))
			stack := newStack(t, cli)
			file := stackFile(t, "", content)
			p, err := planFile(t, cli, stack, file, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Deploy(context.Background(), cli, p, DeployOptions{Detach: true, Timeout: time.Minute}); err != nil {
				t.Fatal(err)
			}
			p, err = planFile(t, cli, stack, file, PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.Services {
				if s.Action != ActionUnchanged {
					t.Errorf("%s: %s %v after a deploy of the same file", s.Name, s.Action, s.Changes)
				}
			}
		})
	}
}
