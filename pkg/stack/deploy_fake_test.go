package stack

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/compose"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// The stack engine against fakeClient: plan, apply, converge, rollback and
// remove under `go test -short`, with the edge cases a real engine will
// not produce on demand. deploy_integration_test.go runs the same paths
// against the real engine.

const fakeTwo = `
services:
  api:
    image: microctl/api:1
    deploy:
      update_config: {monitor: 20ms}
  db:
    image: microctl/db:1
    deploy:
      update_config: {monitor: 20ms}
`

func deploy(t *testing.T, f *fakeClient, p *Plan, o DeployOptions) *Result {
	t.Helper()
	res, err := deployErr(f, p, o)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func deployErr(f *fakeClient, p *Plan, o DeployOptions) (*Result, error) {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Watch.Interval == 0 {
		o.Watch = fastWatch
	}
	return Deploy(context.Background(), f, p, o)
}

// fullActions is actions by full name.
func fullActions(p *Plan) map[string]Action {
	out := map[string]Action{}
	for _, s := range p.Services {
		out[s.FullName] = s.Action
	}
	return out
}

func phases(r *Result) map[string]Phase {
	out := map[string]Phase{}
	for _, s := range r.Services {
		out[s.FullName] = s.Phase
	}
	return out
}

func serviceByName(t *testing.T, f *fakeClient, name string) swarm.Service {
	t.Helper()
	s, _, err := f.ServiceInspectWithRaw(context.Background(), name, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPrepareAsksTheRoleOnce: the one entry point asks the engine for its
// role once (MakePlan used to ask again), and a file that does not load is
// reported before the engine is dialled.
func TestPrepareAsksTheRoleOnce(t *testing.T) {
	f := newFakeClient()
	prepare(t, f, "s", fakeTwo, PlanOptions{})
	if f.infoCalls != 1 {
		t.Errorf("Info called %d times, want 1", f.infoCalls)
	}

	dialled := false
	_, err := Prepare(context.Background(), func() (StackAPI, error) { dialled = true; return f, nil },
		PrepareOptions{Load: compose.LoadOptions{Files: []string{t.TempDir() + "/missing.yml"}, Stack: "s", Env: []string{}}})
	var ce *compose.ComposeError
	if !errors.As(err, &ce) || dialled {
		t.Errorf("err %v, dialled %v: want a ComposeError before dialling", err, dialled)
	}

	f = newFakeClient()
	f.info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateActive} // a worker
	_, err = prepareErr(t, f, "s", fakeTwo, PlanOptions{})
	var nm *sw.NotManagerError
	if !errors.As(err, &nm) || nm.State != "worker" {
		t.Errorf("err %v, want NotManagerError(worker)", err)
	}
	if len(f.Changes()) != 0 {
		t.Errorf("changes on a worker: %v", f.Changes())
	}
}

// TestPlanEveryAction: create, update (with its changes), unchanged and,
// with --prune, remove; without --prune a stale service is kept with a
// warning.
func TestPlanEveryAction(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo+`
  old:
    image: microctl/old:1
    deploy:
      update_config: {monitor: 20ms}
`, PlanOptions{}), DeployOptions{})
	next := strings.Replace(fakeTwo, "microctl/api:1", "microctl/api:2", 1) + `
  web:
    image: microctl/web:1
    deploy:
      update_config: {monitor: 20ms}
`
	p := prepare(t, f, "s", next, PlanOptions{})
	want := map[string]Action{"s_api": ActionUpdate, "s_db": ActionUnchanged, "s_web": ActionCreate}
	if got := fullActions(p); !maps.Equal(got, want) {
		t.Errorf("actions %v, want %v", got, want)
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "s_old is in stack s but not in the file; kept") }) {
		t.Errorf("no warning about the stale service: %v", p.Warnings)
	}
	for _, s := range p.Services {
		if s.FullName == "s_api" && (len(s.Changes) != 1 || s.Changes[0].String() != "image microctl/api:1 -> microctl/api:2") {
			t.Errorf("api changes %v", s.Changes)
		}
	}
	if n := p.Counts(); n[ActionCreate] != 1 || n[ActionUpdate] != 1 || n[ActionUnchanged] != 1 || !p.Changed() {
		t.Errorf("counts %v changed %v", n, p.Changed())
	}

	p = prepare(t, f, "s", next, PlanOptions{Prune: true})
	want["s_old"] = ActionRemove
	if got := fullActions(p); !maps.Equal(got, want) {
		t.Errorf("with prune: actions %v, want %v", got, want)
	}
	if last := p.Services[len(p.Services)-1]; last.Action != ActionRemove {
		t.Errorf("removals are not last: %v", p.Services)
	}
	before := len(f.Changes())
	res := deploy(t, f, p, DeployOptions{})
	if !res.Converged {
		t.Fatalf("not converged: %v", res.Failures())
	}
	got := f.Changes()[before:]
	for _, c := range []string{"remove service s_old", "update service s_api", "create service s_web"} {
		if !slices.Contains(got, c) {
			t.Errorf("changes %v lack %q", got, c)
		}
	}
	if slices.Contains(got, "update service s_db") {
		t.Errorf("an unchanged service was updated: %v", got)
	}
	if phases(res)["s_old"] != PhaseRemoved || phases(res)["s_db"] != PhaseUnchanged {
		t.Errorf("phases %v", phases(res))
	}

	// Deploying the same file again changes nothing at all.
	p = prepare(t, f, "s", next, PlanOptions{})
	if p.Changed() {
		t.Errorf("an unchanged file plans changes: %v", fullActions(p))
	}
}

// TestPlanPinsDigestsAndKeepsThem: --resolve-image always pins; changed
// asks the registry only for images new to their service and otherwise
// keeps the pinned reference the engine has, so an unchanged file stays
// unchanged; a registry that cannot be asked is a warning.
func TestPlanPinsDigestsAndKeepsThem(t *testing.T) {
	f := newFakeClient()
	// The plan resolves images concurrently (errgroup): the record of
	// what was asked needs its own lock.
	var mu sync.Mutex
	var asked []string
	f.distributionInspectFunc = func(ref string) (registry.DistributionInspect, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, ref)
		return digestOf(ref), nil
	}
	p := prepare(t, f, "s", fakeTwo, PlanOptions{ResolveImage: ResolveAlways})
	pinned := digestOf("microctl/api:1").Descriptor.Digest.String()
	for _, s := range p.Services {
		if !strings.Contains(s.spec.TaskTemplate.ContainerSpec.Image, "@sha256:") {
			t.Errorf("%s not pinned: %s", s.FullName, s.spec.TaskTemplate.ContainerSpec.Image)
		}
	}
	deploy(t, f, p, DeployOptions{})
	if img := serviceByName(t, f, "s_api").Spec.TaskTemplate.ContainerSpec.Image; img != "microctl/api:1@"+pinned {
		t.Errorf("deployed image %s", img)
	}

	mu.Lock()
	asked = nil
	mu.Unlock()
	p = prepare(t, f, "s", fakeTwo, PlanOptions{ResolveImage: ResolveChanged})
	mu.Lock()
	n := len(asked)
	mu.Unlock()
	if n != 0 || p.Changed() {
		t.Errorf("unchanged images: asked the registry for %v, changed %v", asked, fullActions(p))
	}

	f.distributionInspectFunc = nil // the default answer: no registry
	p = prepare(t, f, "s", strings.Replace(fakeTwo, "api:1", "api:2", 1), PlanOptions{ResolveImage: ResolveChanged})
	if !slices.ContainsFunc(p.Warnings, func(w string) bool {
		return strings.Contains(w, "image microctl/api:2 could not be pinned to a digest (registry unreachable)")
	}) {
		t.Errorf("warnings %v", p.Warnings)
	}
}

// TestPlanKeepsForceUpdate: the engine's force-update counter is kept, as
// docker stack deploy does, or every deploy would restart the service.
func TestPlanKeepsForceUpdate(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo, PlanOptions{}), DeployOptions{})
	f.mu.Lock()
	for _, s := range f.services {
		s.Spec.TaskTemplate.ForceUpdate = 3 // `docker service update --force`, three times
	}
	f.mu.Unlock()
	p := prepare(t, f, "s", fakeTwo, PlanOptions{})
	for _, s := range p.Services {
		if s.Action != ActionUnchanged || s.spec.TaskTemplate.ForceUpdate != 3 {
			t.Errorf("%s: %s with ForceUpdate %d", s.FullName, s.Action, s.spec.TaskTemplate.ForceUpdate)
		}
	}
}

// TestPlanSeesAnImageChangedByHand: `docker service update --image` keeps
// the stack's image label; the plan must compare the image the service
// runs, or it calls the service unchanged and leaves the hand-made image
// in place.
func TestPlanSeesAnImageChangedByHand(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo, PlanOptions{ResolveImage: ResolveNever}), DeployOptions{})
	f.mu.Lock()
	for _, s := range f.services {
		if s.Spec.Name == "s_api" {
			s.Spec.TaskTemplate.ContainerSpec.Image = "microctl/api:hotfix"
		}
	}
	f.mu.Unlock()
	p := prepare(t, f, "s", fakeTwo, PlanOptions{ResolveImage: ResolveNever})
	for _, s := range p.Services {
		if s.FullName != "s_api" {
			continue
		}
		if s.Action != ActionUpdate || s.spec.TaskTemplate.ContainerSpec.Image != "microctl/api:1" {
			t.Errorf("s_api: %s to %s, want an update back to microctl/api:1", s.Action, s.spec.TaskTemplate.ContainerSpec.Image)
		}
	}
}

// TestPlanRefusals: what the plan refuses before anything is created.
func TestPlanRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeClient)
		file  string
		want  string
	}{
		{"foreign service", func(f *fakeClient) {
			f.services["x"] = &swarm.Service{ID: "x", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "s_api"}}}
		}, fakeTwo, "service s_api already exists and does not belong to stack s"},
		{"missing external network", nil, fakeTwo + `
networks:
  default:
    external: true
    name: nowhere
`, "network nowhere is declared external but does not exist"},
		{"local network", func(f *fakeClient) {
			f.nets = append(f.nets, fakeNet("s_default", "local"))
		}, fakeTwo, `network s_default already exists with scope "local"`},
		{"missing external config", nil, strings.Replace(fakeTwo, "image: microctl/api:1\n", "image: microctl/api:1\n    configs: [c]\n", 1) + `
configs:
  c:
    external: true
    name: nowhere
`, "config nowhere is declared external but does not exist"},
		{"ingress port taken", func(f *fakeClient) {
			f.services["x"] = &swarm.Service{ID: "x", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "other"},
				EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{PublishedPort: 8080, TargetPort: 80}}}}}
		}, `
services:
  api:
    image: microctl/api:1
    ports: ["8080:80"]
`, "8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeClient()
			if tt.setup != nil {
				tt.setup(f)
			}
			_, err := prepareErr(t, f, "s", tt.file, PlanOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
			if len(f.Changes()) != 0 {
				t.Errorf("changes %v", f.Changes())
			}
		})
	}
}

// TestApplyDependsOnOrder: a dependent is created only once what it
// depends on is ready; a dependency that fails skips its dependents.
func TestApplyDependsOnOrder(t *testing.T) {
	file := `
services:
  db:
    image: microctl/db:1
    deploy:
      update_config: {monitor: 20ms}
  migrate:
    image: microctl/migrate:1
    depends_on:
      db: {condition: service_started}
    deploy:
      mode: replicated-job
  api:
    image: microctl/api:1
    depends_on:
      migrate: {condition: service_completed_successfully}
    deploy:
      update_config: {monitor: 20ms}
`
	f := newFakeClient()
	res := deploy(t, f, prepare(t, f, "s", file, PlanOptions{}), DeployOptions{})
	if !res.Converged {
		t.Fatalf("not converged: %v", res.Failures())
	}
	var order []string
	for _, c := range f.Changes() {
		if strings.HasPrefix(c, "create service ") {
			order = append(order, strings.TrimPrefix(c, "create service "))
		}
	}
	if strings.Join(order, ",") != "s_db,s_migrate,s_api" {
		t.Errorf("created in order %v", order)
	}
	if ph := phases(res); ph["s_migrate"] != PhaseCompleted || ph["s_api"] != PhaseConverged {
		t.Errorf("phases %v", ph)
	}

	f = newFakeClient()
	f.behaviour["microctl/migrate:1"] = behaveCrash
	res = deploy(t, f, prepare(t, f, "s", file, PlanOptions{}), DeployOptions{})
	ph := phases(res)
	if res.Converged || ph["s_migrate"] != PhaseFailed || ph["s_api"] != PhaseSkipped {
		t.Errorf("converged %v, phases %v", res.Converged, ph)
	}
	if slices.Contains(f.Changes(), "create service s_api") {
		t.Errorf("the dependent of a failed job was created: %v", f.Changes())
	}
	if got := strings.Join(res.Failures(), "; "); !strings.Contains(got, "api: not deployed: migrate did not become ready") {
		t.Errorf("failures %q", got)
	}
}

// TestApplyPartialFailure: the engine refuses one create: the others go
// on, and the refusal is an error; with --rollback-on-failure what was
// created is removed again, objects included.
func TestApplyPartialFailure(t *testing.T) {
	file := fakeTwo + `
configs:
  conf:
    content: "a=1"
`
	file = strings.Replace(file, "image: microctl/api:1\n", "image: microctl/api:1\n    configs: [conf]\n", 1)
	refuse := func(spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error) {
		if spec.Name == "s_api" {
			return swarm.ServiceCreateResponse{}, errors.New("Error response from daemon: rpc error: code = InvalidArgument desc = bad spec")
		}
		return swarm.ServiceCreateResponse{}, nil
	}
	f := newFakeClient()
	f.serviceCreateFunc = refuse
	_, err := deployErr(f, prepare(t, f, "s", file, PlanOptions{}), DeployOptions{})
	if err == nil || !strings.Contains(err.Error(), "create service s_api") || !strings.Contains(err.Error(), "bad spec") {
		t.Errorf("err %v", err)
	}
	if !slices.Contains(f.Changes(), "create service s_db") {
		t.Errorf("the other service was not created: %v", f.Changes())
	}

	f = newFakeClient()
	f.serviceCreateFunc = refuse
	rec := &recorder{}
	res := deploy(t, f, prepare(t, f, "s", file, PlanOptions{}), DeployOptions{RollbackOnFailure: true, Reporter: rec})
	if !res.RolledBack || res.Converged {
		t.Fatalf("rolled back %v converged %v", res.RolledBack, res.Converged)
	}
	ch := f.Changes()
	for _, c := range []string{"create service s_db", "remove service s_db", "remove network s_default"} {
		if !slices.Contains(ch, c) {
			t.Errorf("changes %v lack %q", ch, c)
		}
	}
	if !slices.ContainsFunc(ch, func(c string) bool { return strings.HasPrefix(c, "remove config s_conf-") }) {
		t.Errorf("the config created by the failed deploy was left: %v", ch)
	}
	if !slices.Contains(rec.Events(), "deploy failed: rolling back") {
		t.Errorf("events %v", rec.Events())
	}
}

// TestConvergeModes: each service mode converges its own way: services
// after their monitor period, jobs once complete.
func TestConvergeModes(t *testing.T) {
	tests := []struct {
		mode  string
		phase Phase
		job   bool
	}{
		{"replicated", PhaseConverged, false},
		{"global", PhaseConverged, false},
		{"replicated-job", PhaseCompleted, true},
		{"global-job", PhaseCompleted, true},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := newFakeClient()
			var seen []Phase
			rep := &phaseRecorder{on: func(s State) { seen = append(seen, s.Phase) }}
			res := deploy(t, f, prepare(t, f, "s", `
services:
  x:
    image: microctl/x:1
    deploy:
      mode: `+tt.mode+`
      update_config: {monitor: 30ms}
`, PlanOptions{}), DeployOptions{Reporter: rep})
			s := res.Services[0]
			if !res.Converged || s.Phase != tt.phase || s.Running != 1 || s.Desired != 1 {
				t.Errorf("converged %v: %+v", res.Converged, s)
			}
			// A created service is watched for its monitor period; a job
			// that has completed is done.
			if slices.Contains(seen, PhaseVerifying) == tt.job {
				t.Errorf("phases seen %v", seen)
			}
		})
	}
}

// phaseRecorder calls on for every state it is given.
type phaseRecorder struct{ on func(State) }

func (r *phaseRecorder) States(s []State) {
	for _, x := range s {
		r.on(x)
	}
}
func (r *phaseRecorder) Event(string) {}

// TestConvergeFailures: the ways a service fails, each with its reason.
func TestConvergeFailures(t *testing.T) {
	tests := []struct {
		name    string
		how     behaviour
		timeout time.Duration
		want    string
	}{
		{"missing image", behaveNoImage, 0, "image microctl/api:2 is not on the node node1 and could not be pulled (No such image); copy it from here with: microctl image push microctl/api:2 --all-nodes"},
		{"crash loop", behaveCrash, 0, "tasks keep failing (3 failed): task task"},
		{"paused update", behavePause, 0, "update paused: update paused due to failure"},
		{"swarm rolled back", behaveRollback, 0, "update failed and Swarm rolled it back"},
		{"timeout", behavePending, 100 * time.Millisecond, "timed out while updating (0/1 running)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeClient()
			deploy(t, f, prepare(t, f, "s", fakeTwo, PlanOptions{}), DeployOptions{})
			f.behaviour["microctl/api:2"] = tt.how
			res := deploy(t, f, prepare(t, f, "s", strings.Replace(fakeTwo, "api:1", "api:2", 1), PlanOptions{}),
				DeployOptions{Timeout: tt.timeout})
			got := phases(res)
			if res.Converged || got["s_api"] != PhaseFailed || got["s_db"] != PhaseUnchanged {
				t.Fatalf("converged %v, phases %v", res.Converged, got)
			}
			if msg := res.Services[indexOf(res, "s_api")].Message; !strings.Contains(msg, tt.want) {
				t.Errorf("message %q, want %q", msg, tt.want)
			}
		})
	}
}

func indexOf(r *Result, name string) int {
	return slices.IndexFunc(r.Services, func(s ServiceResult) bool { return s.FullName == name })
}

// TestRollbackOnFailure: a failed update is rolled back to the previous
// spec with Swarm's rollback, a service the deploy created is removed,
// and the untouched one stays.
func TestRollbackOnFailureFake(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo, PlanOptions{}), DeployOptions{})
	f.behaviour["microctl/api:2"] = behaveCrash
	next := strings.Replace(fakeTwo, "api:1", "api:2", 1) + `
  web:
    image: microctl/web:1
    deploy:
      update_config: {monitor: 20ms}
`
	res := deploy(t, f, prepare(t, f, "s", next, PlanOptions{}), DeployOptions{RollbackOnFailure: true})
	if !res.RolledBack {
		t.Fatalf("not rolled back: %+v", res)
	}
	rb := map[string]Phase{}
	for _, r := range res.Rollback {
		rb[r.FullName] = r.Phase
	}
	if rb["s_api"] != PhaseRolledBack || rb["s_web"] != PhaseRemoved || len(rb) != 2 {
		t.Errorf("rollback %v", rb)
	}
	if img := serviceByName(t, f, "s_api").Spec.TaskTemplate.ContainerSpec.Image; img != "microctl/api:1" {
		t.Errorf("after the rollback api runs %s", img)
	}
	if _, _, err := f.ServiceInspectWithRaw(context.Background(), "s_web", swarm.ServiceInspectOptions{}); err == nil {
		t.Error("the created service is still there")
	}
	if slices.Contains(f.Changes(), "update service s_db") {
		t.Error("the unchanged service was touched")
	}
}

// TestRollbackService and TestScale: the single-service verbs.
func TestRollbackService(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo, PlanOptions{}), DeployOptions{})
	ctx := context.Background()
	wo := WaitOptions{Timeout: 10 * time.Second, Watch: fastWatch}
	if _, err := RollbackService(ctx, f, "s_api", wo); err == nil || !strings.Contains(err.Error(), "no previous spec") {
		t.Errorf("never updated: err %v", err)
	}
	var nf *ServiceNotFoundError
	if _, err := RollbackService(ctx, f, "s_nope", wo); !errors.As(err, &nf) {
		t.Errorf("unknown service: err %v", err)
	}
	deploy(t, f, prepare(t, f, "s", strings.Replace(fakeTwo, "api:1", "api:2", 1), PlanOptions{}), DeployOptions{})
	st, err := RollbackService(ctx, f, "s_api", wo)
	if err != nil || st.Phase != PhaseRolledBack {
		t.Fatalf("state %+v err %v", st, err)
	}
	if img := serviceByName(t, f, "s_api").Spec.TaskTemplate.ContainerSpec.Image; img != "microctl/api:1" {
		t.Errorf("after the rollback api runs %s", img)
	}
	wo.Detach = true
	if st, err := RollbackService(ctx, f, "s_api", wo); err != nil || st.Phase != PhaseRollingBack {
		t.Errorf("detached: state %+v err %v", st, err)
	}
}

func TestScale(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo+`
  agent:
    image: microctl/agent:1
    deploy: {mode: global, update_config: {monitor: 20ms}}
`, PlanOptions{}), DeployOptions{})
	ctx := context.Background()
	wo := WaitOptions{Timeout: 10 * time.Second, Watch: fastWatch}
	states, err := Scale(ctx, f, map[string]uint64{"s_api": 3, "s_db": 2}, wo)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if s.Phase != PhaseConverged || s.Running != s.Desired || s.Desired < 2 {
			t.Errorf("%+v", s)
		}
	}
	if _, err := Scale(ctx, f, map[string]uint64{"s_agent": 2}, wo); err == nil || !strings.Contains(err.Error(), "only replicated services can be scaled") {
		t.Errorf("global: err %v", err)
	}
	f.behaviour["microctl/db:1"] = behavePending
	wo.Timeout = 50 * time.Millisecond
	states, err = Scale(ctx, f, map[string]uint64{"s_db": 4}, wo)
	if err != nil || states[0].Phase != PhaseFailed || !strings.Contains(states[0].Message, "timed out") {
		t.Errorf("states %+v err %v", states, err)
	}
	if f := Failures(states); len(f) != 1 || !strings.HasPrefix(f[0], "s_db: timed out") {
		t.Errorf("failures %v", f)
	}
}

// TestRemoveStack: services first, then (tasks gone) secrets, configs and
// networks; nothing found is an error that says so.
func TestRemoveStack(t *testing.T) {
	f := newFakeClient()
	file := strings.Replace(fakeTwo, "image: microctl/api:1\n", "image: microctl/api:1\n    secrets: [pw]\n    configs: [conf]\n", 1) + `
secrets:
  pw:
    file: ./pw.txt
configs:
  conf:
    content: "a=1"
`
	path := writeCompose(t, file)
	if err := writeFileIn(path, "pw.txt", "s3cr3t"); err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(context.Background(), func() (StackAPI, error) { return f, nil }, PrepareOptions{
		Load: compose.LoadOptions{Files: []string{path}, Stack: "s", Env: []string{}}, Plan: PlanOptions{ResolveImage: ResolveNever}})
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, f, p, DeployOptions{})
	rec := &recorder{}
	res, err := RemoveStack(context.Background(), f, "s", rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Services, ",") != "s_api,s_db" || len(res.Secrets) != 1 || len(res.Configs) != 1 || strings.Join(res.Networks, ",") != "s_default" {
		t.Errorf("removed %+v", res)
	}
	ch := f.Changes()
	last := func(prefix string) int {
		i := -1
		for j, c := range ch {
			if strings.HasPrefix(c, prefix) {
				i = j
			}
		}
		return i
	}
	if !(last("remove service") < last("remove secret") && last("remove secret") < last("remove config") && last("remove config") < last("remove network")) {
		t.Errorf("removal order %v", ch)
	}
	var nf *StackNotFoundError
	if _, err := RemoveStack(context.Background(), f, "s", nil); !errors.As(err, &nf) {
		t.Errorf("second removal: err %v", err)
	}
}

// TestListServices: ps over the fake, with stacks and task counts.
func TestListServices(t *testing.T) {
	f := newFakeClient()
	deploy(t, f, prepare(t, f, "s", fakeTwo, PlanOptions{}), DeployOptions{})
	rows, err := ListServices(context.Background(), f, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Name != "s_api" || rows[0].Stack != "s" || rows[0].Image != "microctl/api:1" || rows[0].Mode != "replicated" {
		t.Errorf("rows %+v", rows)
	}
	var nf *StackNotFoundError
	if _, err := ListServices(context.Background(), f, "nope"); !errors.As(err, &nf) {
		t.Errorf("err %v", err)
	}
	names, err := StackNames(context.Background(), f)
	if err != nil || strings.Join(names, ",") != "s" {
		t.Errorf("stacks %v err %v", names, err)
	}
}
