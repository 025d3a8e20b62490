package spread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/bench"
)

// Swarm is what the coordinator needs of a manager.
type Swarm interface {
	ServiceCreate(ctx context.Context, spec swarm.ServiceSpec, opts swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceRemove(ctx context.Context, id string) error
	TaskList(ctx context.Context, opts swarm.TaskListOptions) ([]swarm.Task, error)
	NetworkInspect(ctx context.Context, name string, opts network.InspectOptions) (network.Inspect, error)
}

// Options configure Run.
type Options struct {
	Image     string   // the microctl image the workers run
	Placement []string // Swarm placement constraints, as in compose
	Env       []string // for the workers: CONSUL_HTTP_ADDR and the like
	// Name prefixes the job service and the KV prefix. Default
	// "microctl-bench".
	Name string
	// KVRoot is where run prefixes live. Default "microctl/bench/".
	KVRoot string
	// ReadyTimeout bounds the wait for every worker to claim its slot
	// (image on the node, container started, Consul reached). Default 2m.
	ReadyTimeout time.Duration
	// ResultGrace is how long after the run's planned end a result may
	// still arrive. Default 30s.
	ResultGrace time.Duration
	// StartDelay is the barrier's distance in the future when it opens,
	// so that every worker sees it before the instant. Default 500ms.
	StartDelay time.Duration
	// Poll is the pause between two observations. Default 250ms.
	Poll time.Duration
	// Progress is told what the run is doing.
	Progress func(Event)
	Now      func() time.Time
}

// Event is a step of the run, for the command's progress line.
type Event struct {
	Step    string // "created", "ready", "started", "reported"
	Message string
}

// Report is the merged run and each worker's share.
type Report struct {
	Merged    *bench.Result `json:"-"`
	Workers   []WorkerRow   `json:"workers"`
	Service   string        `json:"service"`
	ServiceID string        `json:"service_id"`
	Prefix    string        `json:"kv_prefix"`
	Image     string        `json:"image"`
	// ReadySeconds is from the command's start until every worker had
	// claimed its slot; StartToLoadSeconds until the last worker began its
	// run (its own clock: on one host, or NTP-synchronised nodes).
	ReadySeconds       float64 `json:"ready_s"`
	StartToLoadSeconds float64 `json:"start_to_load_s"`
	// Cleanup says what removing the service and the prefix gave.
	Cleanup string `json:"cleanup"`
}

// WorkerRow is one worker's share and what it measured.
type WorkerRow struct {
	Identity
	Connections    int           `json:"connections"`
	Rate           float64       `json:"rate,omitempty"`
	Requests       uint64        `json:"requests"`
	RequestsPerSec float64       `json:"requests_per_sec"`
	Latency        bench.Latency `json:"latency"`
	Errors         int64         `json:"errors"`
	Result         *bench.Result `json:"-"`
}

// Run creates the job service, waits for every worker, opens the barrier,
// collects and merges the results. The service and the KV prefix are
// removed before it returns, whatever happened (also when ctx is
// cancelled: the removal has its own short context), and the Report says
// whether that worked.
func Run(ctx context.Context, api Swarm, kv KV, plan Plan, opts ...Option) (rep *Report, err error) {
	o := Options{Name: "microctl-bench", KVRoot: "microctl/bench/", ReadyTimeout: 2 * time.Minute,
		ResultGrace: 30 * time.Second, StartDelay: 500 * time.Millisecond, Poll: 250 * time.Millisecond, Now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.Image == "" {
		return nil, errors.New("no worker image")
	}
	n := len(plan.Workers)
	began := o.Now()
	id := fmt.Sprintf("%x", rand.Uint64()&0xffffffffff)
	prefix := o.KVRoot + o.Name + "-" + id + "/"
	rep = &Report{Service: o.Name + "-" + id, Prefix: prefix, Image: o.Image}
	emit := func(step, f string, a ...any) {
		if o.Progress != nil {
			o.Progress(Event{Step: step, Message: fmt.Sprintf(f, a...)})
		}
	}

	var longest time.Duration
	for _, w := range plan.Workers {
		longest = max(longest, w.Duration+w.Timeout)
	}
	plan.StartBy = began.Add(o.ReadyTimeout + o.StartDelay + 10*time.Second)
	if err := kv.Put(ctx, keySpec(prefix), mustJSON(plan)); err != nil {
		return nil, err
	}
	var serviceID string
	defer func() {
		rep.Cleanup = cleanup(api, kv, serviceID, prefix)
		if rep.Cleanup != "removed" && err == nil {
			err = fmt.Errorf("the run finished but its cleanup did not: %s", rep.Cleanup)
		}
	}()
	spec, err := serviceSpec(ctx, api, rep.Service, prefix, n, o)
	if err != nil {
		return rep, err
	}
	resp, err := api.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		return rep, fmt.Errorf("create the job service %s: %w", rep.Service, err)
	}
	serviceID, rep.ServiceID = resp.ID, resp.ID
	emit("created", "service %s: %d one-shot workers of %s", rep.Service, n, o.Image)

	ids, err := waitClaims(ctx, api, kv, serviceID, prefix, n, o)
	if err != nil {
		return rep, err
	}
	rep.ReadySeconds = o.Now().Sub(began).Seconds()
	emit("ready", "%d workers ready after %.1fs", n, rep.ReadySeconds)

	at := o.Now().Add(o.StartDelay)
	if err := kv.Put(ctx, keyStart(prefix), mustJSON(Start{At: at})); err != nil {
		return rep, err
	}
	emit("started", "barrier open: the workers start at %s", at.Format("15:04:05.000"))
	results, outcomes, err := waitResults(ctx, api, kv, serviceID, prefix, ids, at.Add(longest+o.ResultGrace), o)
	if err != nil {
		return rep, err
	}
	var parts []*bench.Result
	var lastBegan time.Time
	for i := range n {
		r, oc := results[i], outcomes[i]
		parts = append(parts, r)
		if oc.Began.After(lastBegan) {
			lastBegan = oc.Began
		}
		rep.Workers = append(rep.Workers, WorkerRow{Identity: ids[i], Connections: plan.Workers[i].Connections,
			Rate: plan.Workers[i].Rate, Requests: r.Requests, RequestsPerSec: r.RequestsPerSec,
			Latency: r.Latency, Errors: r.Errors.Total, Result: r})
	}
	rep.StartToLoadSeconds = lastBegan.Sub(began).Seconds()
	rep.Merged, err = bench.Merge(parts)
	if err != nil {
		return rep, err
	}
	var rows []bench.Part
	for _, w := range rep.Workers {
		rows = append(rows, bench.Part{Name: w.Identity.String(), Connections: w.Connections, Rate: w.Rate,
			Requests: w.Requests, RequestsPerSec: w.RequestsPerSec, Latency: w.Latency, Errors: w.Errors})
	}
	rep.Merged.SetParts(rows)
	return rep, nil
}

// Option sets an option.
type Option func(*Options)

// WithImage sets the workers' image.
func WithImage(img string) Option { return func(o *Options) { o.Image = img } }

// WithPlacement sets placement constraints.
func WithPlacement(c ...string) Option { return func(o *Options) { o.Placement = c } }

// WithEnv sets the workers' environment.
func WithEnv(env ...string) Option { return func(o *Options) { o.Env = env } }

// WithName sets the prefix of the service's name and of the KV prefix.
func WithName(n string) Option { return func(o *Options) { o.Name = n } }

// WithReadyTimeout bounds the wait for the workers to be ready.
func WithReadyTimeout(d time.Duration) Option { return func(o *Options) { o.ReadyTimeout = d } }

// WithResultGrace sets how late after the planned end a result may come.
func WithResultGrace(d time.Duration) Option { return func(o *Options) { o.ResultGrace = d } }

// WithProgress sets the progress callback.
func WithProgress(f func(Event)) Option { return func(o *Options) { o.Progress = f } }

func serviceSpec(ctx context.Context, api Swarm, name, prefix string, n int, o Options) (swarm.ServiceSpec, error) {
	// The host network: a worker reaches Consul and the target where the
	// node itself reaches them (127.0.0.1 on a one-host swarm), and its
	// connections do not go through an overlay's NAT.
	host, err := api.NetworkInspect(ctx, "host", network.InspectOptions{})
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("the host network: %w", err)
	}
	replicas := uint64(n)
	stopGrace := 3 * time.Second
	none := swarm.RestartPolicyConditionNone
	env := append(slices.Clone(o.Env),
		"MICROCTL_WORKER_TASK={{.Task.Name}}",
		"MICROCTL_WORKER_NODE={{.Node.Hostname}}",
	)
	return swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"microctl.bench.kv-prefix": prefix}},
		// Replicated with restart none, not replicated-job: each task runs
		// once all the same, and removing the service removes its tasks'
		// containers, which for a job Swarm does not do (moby#42789,
		// moby#44312: the tasks of a removed job stay in the store and their
		// exited containers on every node).
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				// A worker stops its run on SIGTERM; removal (Ctrl-C, a
				// failure) need not wait Docker's default 10 s for it.
				StopGracePeriod: &stopGrace,
				Image:           o.Image,
				Args:            []string{"bench", "worker", "--kv-prefix", prefix},
				Env:             env,
			},
			// A worker that fails is reported, not run again: a second
			// run would find its slot claimed and its share half done.
			RestartPolicy: &swarm.RestartPolicy{Condition: none},
			Placement:     &swarm.Placement{Constraints: o.Placement},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: host.ID}},
		},
	}, nil
}

// taskProblem names a task of the service that ended before its worker
// reported, or "" when none did.
// A completed task is no problem: a worker exits 0 only after writing its
// result, and non-zero (failed) after writing why it has none.
func taskProblem(ctx context.Context, api Swarm, serviceID string) string {
	tasks, err := api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
	if err != nil {
		return ""
	}
	for _, t := range tasks {
		switch t.Status.State {
		case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned, swarm.TaskStateShutdown:
		default:
			continue
		}
		msg := t.Status.Err
		if msg == "" {
			msg = t.Status.Message
		}
		p := fmt.Sprintf("task %s.%d (%s) on node %s is %s: %s", serviceID[:min(12, len(serviceID))], t.Slot, t.ID[:min(12, len(t.ID))], t.NodeID[:min(12, len(t.NodeID))], t.Status.State, msg)
		if strings.Contains(msg, "No such image") || strings.Contains(msg, "pull access denied") {
			img := ""
			if t.Spec.ContainerSpec != nil {
				img = t.Spec.ContainerSpec.Image
			}
			p += fmt.Sprintf("; copy the image to the nodes with: microctl image push %s --all-nodes", img)
		}
		return p
	}
	return ""
}

func waitClaims(ctx context.Context, api Swarm, kv KV, serviceID, prefix string, n int, o Options) ([]Identity, error) {
	deadline := o.Now().Add(o.ReadyTimeout)
	for {
		keys, err := kv.Keys(ctx, prefix+"claim/")
		if err != nil {
			return nil, err
		}
		if len(keys) >= n {
			ids := make([]Identity, n)
			for i := range n {
				b, ok, err := kv.Get(ctx, keyClaim(prefix, i))
				if err != nil {
					return nil, err
				}
				if !ok || json.Unmarshal(b, &ids[i]) != nil {
					return nil, fmt.Errorf("slot %d: claim missing or unreadable", i)
				}
			}
			return ids, nil
		}
		// A task that failed already (no such image on its node, a
		// crash) will never claim: say so now rather than at the deadline.
		if p := taskProblem(ctx, api, serviceID); p != "" {
			return nil, fmt.Errorf("%d of %d workers ready; %s", len(keys), n, p)
		}
		if o.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d workers ready after %s (slots claimed: %s): the others never reached Consul's KV at %s",
				len(keys), n, o.ReadyTimeout, slotList(keys), prefix)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return nil, err
		}
	}
}

func slotList(keys []string) string {
	var s []string
	for _, k := range keys {
		s = append(s, k[strings.LastIndex(k, "/")+1:])
	}
	if len(s) == 0 {
		return "none"
	}
	slices.Sort(s)
	return strings.Join(s, ",")
}

func waitResults(ctx context.Context, api Swarm, kv KV, serviceID, prefix string, ids []Identity, deadline time.Time, o Options) ([]*bench.Result, []Outcome, error) {
	n := len(ids)
	results := make([]*bench.Result, n)
	outcomes := make([]Outcome, n)
	have := 0
	for have < n {
		for i := range n {
			if results[i] != nil {
				continue
			}
			if b, ok, err := kv.Get(ctx, keyError(prefix, i)); err == nil && ok {
				return nil, nil, fmt.Errorf("%s failed: %s", ids[i], b)
			}
			b, ok, err := kv.Get(ctx, keyResult(prefix, i))
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				continue
			}
			r, err := bench.UnmarshalWire(b)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: result: %w", ids[i], err)
			}
			if b, ok, _ := kv.Get(ctx, keyOutcome(prefix, i)); ok {
				_ = json.Unmarshal(b, &outcomes[i])
			}
			results[i] = r
			have++
			if o.Progress != nil {
				o.Progress(Event{Step: "reported", Message: fmt.Sprintf("%s: %d requests", ids[i], r.Requests)})
			}
		}
		if have == n {
			break
		}
		if o.Now().After(deadline) {
			var missing []string
			for i := range n {
				if results[i] == nil {
					missing = append(missing, ids[i].String())
				}
			}
			return nil, nil, fmt.Errorf("no result from %s by %s (the run should have ended %s before)",
				strings.Join(missing, ", "), deadline.Format("15:04:05"), o.ResultGrace)
		}
		if p := taskProblem(ctx, api, serviceID); p != "" {
			// Its worker may have written why just before it exited.
			for i := range n {
				if b, ok, err := kv.Get(ctx, keyError(prefix, i)); err == nil && ok {
					return nil, nil, fmt.Errorf("%s failed: %s", ids[i], b)
				}
			}
			return nil, nil, fmt.Errorf("%d of %d workers reported; %s", have, n, p)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return nil, nil, err
		}
	}
	return results, outcomes, nil
}

// cleanup removes the service and the KV prefix with a context of its own:
// the run's may be cancelled (Ctrl-C) or expired. It returns "removed" or
// what was left.
func cleanup(api Swarm, kv KV, serviceID, prefix string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var left []string
	if serviceID != "" {
		if err := api.ServiceRemove(ctx, serviceID); err != nil && !cerrdefs.IsNotFound(err) {
			left = append(left, "job service "+serviceID+": "+err.Error())
		}
	}
	if err := kv.DeleteTree(ctx, prefix); err != nil {
		left = append(left, "KV prefix "+prefix+": "+err.Error())
	}
	if len(left) > 0 {
		return "left behind: " + strings.Join(left, "; ")
	}
	return "removed"
}
