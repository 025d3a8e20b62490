package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/microctl/microctl/pkg/compose"
)

// fakeClient is a Docker Engine in memory, in docker/cli's style: it embeds
// the StackAPI interface (a method no test expected panics on the nil
// interface), has one optional func field per method a test may want to
// override, and otherwise plays a small swarm manager: services get tasks
// whose fate the image decides (see behaviour), removals shut tasks down.
// Every change is recorded in changes ("create service s_api", "remove
// config s_c-0123456789", ...), so a test asserts what was and was not done.
type fakeClient struct {
	StackAPI

	infoFunc                func(ctx context.Context) (system.Info, error)
	serviceCreateFunc       func(spec swarm.ServiceSpec) (swarm.ServiceCreateResponse, error)
	serviceUpdateFunc       func(id string, spec swarm.ServiceSpec, o swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	serviceRemoveFunc       func(id string) error
	networkRemoveFunc       func(id string) error
	configCreateFunc        func(spec swarm.ConfigSpec) (swarm.ConfigCreateResponse, error)
	distributionInspectFunc func(image string) (registry.DistributionInspect, error)
	taskListFunc            func(o swarm.TaskListOptions) ([]swarm.Task, error)

	mu       sync.Mutex
	info     system.Info
	services map[string]*swarm.Service // by ID
	tasks    []swarm.Task
	stale    map[string]bool // task IDs of an older spec: not _up-to-date
	nets     []network.Summary
	configs  []swarm.Config
	secrets  []swarm.Secret
	images   map[string]bool // present on "this node"
	// behaviour by image (the ContainerSpec image, digest stripped);
	// default behaveRun.
	behaviour map[string]behaviour
	changes   []string
	infoCalls int
	nextID    int
}

// behaviour is what the tasks of an image do.
type behaviour int

const (
	behaveRun      behaviour = iota // tasks run (a job's complete)
	behaveCrash                     // tasks fail, again and again
	behaveNoImage                   // tasks are rejected: No such image
	behavePending                   // tasks never start
	behavePause                     // an update pauses (failure_action: pause)
	behaveRollback                  // an update fails and Swarm rolls it back
)

func newFakeClient() *fakeClient {
	return &fakeClient{
		info: system.Info{Name: "node1", Swarm: swarm.Info{NodeID: "node1", LocalNodeState: swarm.LocalNodeStateActive,
			ControlAvailable: true, Nodes: 1}},
		services:  map[string]*swarm.Service{},
		stale:     map[string]bool{},
		images:    map[string]bool{},
		behaviour: map[string]behaviour{},
	}
}

func (f *fakeClient) record(format string, a ...any) {
	f.changes = append(f.changes, fmt.Sprintf(format, a...))
}

// Changes returns the recorded changes.
func (f *fakeClient) Changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.changes)
}

func (f *fakeClient) id(prefix string) string {
	f.nextID++
	return fmt.Sprintf("%s%020d", prefix, f.nextID)
}

func notFound(what string) error { return cerrdefs.ErrNotFound.WithMessage(what + " not found") }

func (f *fakeClient) Info(ctx context.Context) (system.Info, error) {
	f.mu.Lock()
	f.infoCalls++
	f.mu.Unlock()
	if f.infoFunc != nil {
		return f.infoFunc(ctx)
	}
	return f.info, nil
}

func (f *fakeClient) DaemonHost() string    { return "unix:///fake.sock" }
func (f *fakeClient) ClientVersion() string { return "1.41" }

// labelMatch reports whether labels satisfy every "key" or "key=value" filter.
func labelMatch(args filters.Args, labels map[string]string) bool {
	for _, l := range args.Get("label") {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

func (f *fakeClient) ServiceList(ctx context.Context, o swarm.ServiceListOptions) ([]swarm.Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := o.Filters.Get("id")
	var out []swarm.Service
	for _, s := range f.services {
		if len(ids) > 0 && !slices.Contains(ids, s.ID) || !labelMatch(o.Filters, s.Spec.Labels) {
			continue
		}
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b swarm.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}

func (f *fakeClient) ServiceInspectWithRaw(ctx context.Context, ref string, _ swarm.ServiceInspectOptions) (swarm.Service, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		if s.ID == ref || s.Spec.Name == ref {
			return *s, nil, nil
		}
	}
	return swarm.Service{}, nil, notFound("service " + ref)
}

func (f *fakeClient) ServiceCreate(ctx context.Context, spec swarm.ServiceSpec, _ swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error) {
	if f.serviceCreateFunc != nil {
		resp, err := f.serviceCreateFunc(spec)
		if err != nil {
			return resp, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		if s.Spec.Name == spec.Name {
			return swarm.ServiceCreateResponse{}, cerrdefs.ErrConflict.WithMessage("name conflicts with an existing object")
		}
	}
	now := time.Now()
	s := &swarm.Service{ID: f.id("svc"), Spec: spec, Meta: swarm.Meta{Version: swarm.Version{Index: 1}, CreatedAt: now, UpdatedAt: now}}
	f.services[s.ID] = s
	f.record("create service %s", spec.Name)
	f.startTasks(s, now)
	return swarm.ServiceCreateResponse{ID: s.ID}, nil
}

func (f *fakeClient) ServiceUpdate(ctx context.Context, id string, v swarm.Version, spec swarm.ServiceSpec, o swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error) {
	if f.serviceUpdateFunc != nil {
		if resp, err := f.serviceUpdateFunc(id, spec, o); err != nil {
			return resp, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[id]
	if !ok {
		return swarm.ServiceUpdateResponse{}, notFound("service " + id)
	}
	if v.Index != s.Version.Index {
		return swarm.ServiceUpdateResponse{}, fmt.Errorf("update out of sequence")
	}
	now := time.Now()
	s.Version.Index++
	if o.Rollback == "previous" {
		if s.PreviousSpec == nil {
			return swarm.ServiceUpdateResponse{}, cerrdefs.ErrFailedPrecondition.WithMessage("service does not have a previous spec")
		}
		f.record("rollback service %s", s.Spec.Name)
		s.Spec, s.PreviousSpec = *s.PreviousSpec, &s.Spec
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: &now, CompletedAt: &now}
		f.startTasks(s, now)
		return swarm.ServiceUpdateResponse{}, nil
	}
	f.record("update service %s", spec.Name)
	prev := s.Spec
	s.PreviousSpec, s.Spec = &prev, spec
	switch f.behaviourOf(spec) {
	case behavePause:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, StartedAt: &now, Message: "update paused due to failure or early termination of task x"}
	case behaveRollback:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: &now, Message: "rollback completed"}
		s.Spec, s.PreviousSpec = prev, &spec
	default:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: &now, CompletedAt: &now, Message: "update completed"}
	}
	f.startTasks(s, now)
	return swarm.ServiceUpdateResponse{}, nil
}

func (f *fakeClient) ServiceRemove(ctx context.Context, id string) error {
	if f.serviceRemoveFunc != nil {
		if err := f.serviceRemoveFunc(id); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[id]
	if !ok {
		return notFound("service " + id)
	}
	delete(f.services, id)
	f.record("remove service %s", s.Spec.Name)
	for i := range f.tasks {
		if f.tasks[i].ServiceID == id {
			f.tasks[i].DesiredState = swarm.TaskStateShutdown
			f.tasks[i].Status.State = swarm.TaskStateShutdown
		}
	}
	return nil
}

func (f *fakeClient) behaviourOf(spec swarm.ServiceSpec) behaviour {
	return f.behaviour[imageWithoutDigest(spec.TaskTemplate.ContainerSpec.Image)]
}

// startTasks replaces a service's tasks with new ones for its spec, the way
// the image's behaviour says they end; f.mu is held.
func (f *fakeClient) startTasks(s *swarm.Service, now time.Time) {
	for i := range f.tasks {
		if f.tasks[i].ServiceID != s.ID {
			continue
		}
		f.stale[f.tasks[i].ID] = true
		if f.tasks[i].DesiredState == swarm.TaskStateRunning {
			f.tasks[i].DesiredState = swarm.TaskStateShutdown
			f.tasks[i].Status.State = swarm.TaskStateShutdown
		}
	}
	n, job := uint64(1), false
	m := s.Spec.Mode
	switch {
	case m.Replicated != nil && m.Replicated.Replicas != nil:
		n = *m.Replicated.Replicas
	case m.ReplicatedJob != nil:
		job = true
		if m.ReplicatedJob.TotalCompletions != nil {
			n = *m.ReplicatedJob.TotalCompletions
		}
	case m.GlobalJob != nil:
		job = true
	}
	if m.Global != nil || m.GlobalJob != nil {
		s.ServiceStatus = &swarm.ServiceStatus{DesiredTasks: 1}
	}
	if job {
		iter := uint64(1)
		if s.JobStatus != nil {
			iter = s.JobStatus.JobIteration.Index + 1
		}
		s.JobStatus = &swarm.JobStatus{JobIteration: swarm.Version{Index: iter}}
	}
	b := f.behaviourOf(s.Spec)
	for i := uint64(0); i < n; i++ {
		t := swarm.Task{ID: f.id("task"), ServiceID: s.ID, NodeID: "node1", Slot: int(i + 1),
			Spec: s.Spec.TaskTemplate, Annotations: swarm.Annotations{Labels: s.Spec.Labels},
			DesiredState: swarm.TaskStateRunning, Status: swarm.TaskStatus{Timestamp: now.Add(time.Millisecond)}}
		if s.JobStatus != nil {
			t.JobIteration = &s.JobStatus.JobIteration
		}
		switch {
		case b == behaveCrash:
			for j := 0; j < 3; j++ {
				ft := t
				ft.ID = f.id("task")
				ft.DesiredState, ft.Status.State = swarm.TaskStateShutdown, swarm.TaskStateFailed
				ft.Status.Err = "task: non-zero exit (1)"
				f.tasks = append(f.tasks, ft)
			}
			continue
		case b == behaveNoImage:
			t.DesiredState, t.Status.State = swarm.TaskStateShutdown, swarm.TaskStateRejected
			t.Status.Err = "No such image: " + s.Spec.TaskTemplate.ContainerSpec.Image
		case b == behavePending:
			t.Status.State = swarm.TaskStatePending
		case job:
			t.DesiredState, t.Status.State = swarm.TaskStateComplete, swarm.TaskStateComplete
		default:
			t.Status.State = swarm.TaskStateRunning
		}
		f.tasks = append(f.tasks, t)
	}
}

func (f *fakeClient) TaskList(ctx context.Context, o swarm.TaskListOptions) ([]swarm.Task, error) {
	if f.taskListFunc != nil {
		return f.taskListFunc(o)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	svcs := o.Filters.Get("service")
	var out []swarm.Task
	for _, t := range f.tasks {
		if len(svcs) > 0 && !slices.Contains(svcs, t.ServiceID) || !labelMatch(o.Filters, t.Annotations.Labels) {
			continue
		}
		if o.Filters.ExactMatch("_up-to-date", "true") && f.stale[t.ID] {
			continue // of an older spec
		}
		out = append(out, t)
	}
	return out, nil
}

func (f *fakeClient) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []network.Summary
	for _, n := range f.nets {
		if labelMatch(o.Filters, n.Labels) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (f *fakeClient) NetworkCreate(ctx context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.nets {
		if n.Name == name {
			return network.CreateResponse{}, cerrdefs.ErrConflict.WithMessage("network with name " + name + " already exists")
		}
	}
	n := network.Summary{ID: f.id("net"), Name: name, Driver: o.Driver, Scope: "swarm", Labels: o.Labels,
		Attachable: o.Attachable, Internal: o.Internal}
	f.nets = append(f.nets, n)
	f.record("create network %s", name)
	return network.CreateResponse{ID: n.ID}, nil
}

func (f *fakeClient) NetworkRemove(ctx context.Context, ref string) error {
	if f.networkRemoveFunc != nil {
		if err := f.networkRemoveFunc(ref); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range f.nets {
		if n.ID == ref || n.Name == ref {
			f.nets = slices.Delete(f.nets, i, i+1)
			f.record("remove network %s", n.Name)
			return nil
		}
	}
	return notFound("network " + ref)
}

func (f *fakeClient) ConfigList(ctx context.Context, o swarm.ConfigListOptions) ([]swarm.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Config
	for _, c := range f.configs {
		if labelMatch(o.Filters, c.Spec.Labels) {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeClient) ConfigCreate(ctx context.Context, spec swarm.ConfigSpec) (swarm.ConfigCreateResponse, error) {
	if f.configCreateFunc != nil {
		if resp, err := f.configCreateFunc(spec); err != nil {
			return resp, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.configs {
		if c.Spec.Name == spec.Name {
			return swarm.ConfigCreateResponse{}, cerrdefs.ErrConflict.WithMessage("config " + spec.Name + " already exists")
		}
	}
	c := swarm.Config{ID: f.id("cfg"), Spec: spec}
	f.configs = append(f.configs, c)
	f.record("create config %s", spec.Name)
	return swarm.ConfigCreateResponse{ID: c.ID}, nil
}

func (f *fakeClient) ConfigRemove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.configs {
		if c.ID == id {
			f.configs = slices.Delete(f.configs, i, i+1)
			f.record("remove config %s", c.Spec.Name)
			return nil
		}
	}
	return notFound("config " + id)
}

func (f *fakeClient) SecretList(ctx context.Context, o swarm.SecretListOptions) ([]swarm.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Secret
	for _, s := range f.secrets {
		if labelMatch(o.Filters, s.Spec.Labels) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeClient) SecretCreate(ctx context.Context, spec swarm.SecretSpec) (swarm.SecretCreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.secrets {
		if s.Spec.Name == spec.Name {
			return swarm.SecretCreateResponse{}, cerrdefs.ErrConflict.WithMessage("secret " + spec.Name + " already exists")
		}
	}
	s := swarm.Secret{ID: f.id("sec"), Spec: spec}
	f.secrets = append(f.secrets, s)
	f.record("create secret %s", spec.Name)
	return swarm.SecretCreateResponse{ID: s.ID}, nil
}

func (f *fakeClient) SecretRemove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.secrets {
		if s.ID == id {
			f.secrets = slices.Delete(f.secrets, i, i+1)
			f.record("remove secret %s", s.Spec.Name)
			return nil
		}
	}
	return notFound("secret " + id)
}

func (f *fakeClient) ImageInspect(ctx context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.images[imageWithoutDigest(ref)] {
		return image.InspectResponse{ID: "sha256:" + ref}, nil
	}
	return image.InspectResponse{}, notFound("No such image: " + ref)
}

func (f *fakeClient) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	return nil, nil
}

func (f *fakeClient) ContainerRemove(ctx context.Context, id string, _ container.RemoveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("remove container %s", id)
	return nil
}

func (f *fakeClient) DistributionInspect(ctx context.Context, ref, _ string) (registry.DistributionInspect, error) {
	if f.distributionInspectFunc != nil {
		return f.distributionInspectFunc(ref)
	}
	return registry.DistributionInspect{}, fmt.Errorf("Error response from daemon: Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io: no such host")
}

// digestOf is a fixed digest for tests of image pinning.
func digestOf(ref string) registry.DistributionInspect {
	return registry.DistributionInspect{Descriptor: ocispec.Descriptor{Digest: digest.FromString(ref)}}
}

// writeCompose writes a compose file into a temporary directory.
func writeCompose(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := dir + "/stack.yml"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// prepare plans body (a compose file) as stack against f.
func prepare(t *testing.T, f *fakeClient, stack, body string, po PlanOptions) *Plan {
	t.Helper()
	p, err := prepareErr(t, f, stack, body, po)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func prepareErr(t *testing.T, f *fakeClient, stack, body string, po PlanOptions) (*Plan, error) {
	t.Helper()
	if po.ResolveImage == "" {
		po.ResolveImage = ResolveNever
	}
	return Prepare(context.Background(), func() (StackAPI, error) { return f, nil }, PrepareOptions{
		Load: compose.LoadOptions{Files: []string{writeCompose(t, body)}, Stack: stack, Env: []string{}},
		Plan: po,
	})
}

// fastWatch polls often, so tests with short monitor periods end quickly.
var fastWatch = WatchOptions{Interval: 5 * time.Millisecond}

// recorder is a Reporter that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []string
	states int
}

func (r *recorder) States([]State) { r.mu.Lock(); r.states++; r.mu.Unlock() }
func (r *recorder) Event(m string) { r.mu.Lock(); r.events = append(r.events, m); r.mu.Unlock() }
func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// fakeNet is a network as NetworkList shows it.
func fakeNet(name, scope string) network.Summary {
	return network.Summary{ID: "net-" + name, Name: name, Scope: scope, Driver: "bridge"}
}

// writeFileIn writes a file next to the compose file at composePath.
func writeFileIn(composePath, name, body string) error {
	return os.WriteFile(filepath.Join(filepath.Dir(composePath), name), []byte(body), 0o644)
}
