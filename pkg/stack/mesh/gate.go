// Package mesh decides whether a go-micro service deployed on Swarm is
// serving: not only are its tasks running (Swarm's half), each running task
// has exactly one instance registered in Consul at its overlay address,
// passing, and passing continuously for a while (Consul's half); and the
// instances of tasks that no longer run are gone.
//
// The package is pure: it holds no client. The caller observes both halves
// (Swarm's tasks, Consul's instances of the service) as often as it likes
// and hands each observation to a Gate, which keeps the history the
// decision needs (when a task started, since when an instance passes, when
// an instance became stale) and answers converged, waiting or failed. The
// caller acts on the answer: it deregisters the stale instances the gate
// names, rolls back on failure, and so on.
package mesh

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Label is the deploy label with which a compose file declares the Consul
// name of a service: deploy.labels["microctl.consul.service"].
const Label = "microctl.consul.service"

// Consul check states, as Consul spells them.
const (
	Passing  = "passing"
	Warning  = "warning"
	Critical = "critical"
)

// Defaults of the gate's timings, used when neither the caller nor the
// instances' Meta say otherwise.
const (
	// DefaultMinHealthy is how long an instance must pass continuously
	// when no TTL is known.
	DefaultMinHealthy = 10 * time.Second
	// MinHealthyDeadline is the floor of the default healthy deadline
	// (2 x TTL): registering takes a process start, a Consul round trip
	// and a first heartbeat, which a short TTL does not bound.
	MinHealthyDeadline = 30 * time.Second
)

// Task is one Swarm task of the service as observed.
type Task struct {
	ID   string
	Slot int
	// Running is true when the task's state is running (Swarm's half of
	// "serving").
	Running bool
	// Current is true when the task runs the service's current spec (the
	// new version during an update).
	Current bool
	// Addrs are the task's addresses on its networks, without mask. go-micro
	// registers one of them (the first private IPv4 address).
	Addrs []string
	// Since is when the task reached its present state (the engine's status
	// timestamp): when it started running, or when it stopped. Zero: the
	// gate uses the first observation that saw the task in that state.
	Since time.Time
	// Pending is true for a task between lives: coming up (desired running,
	// not yet running: its process may already have registered, as go-micro
	// does at start, before the engine reports it running; on a loaded
	// node that takes tens of seconds) or going down (running, told to
	// stop: it still serves and drains). Its instance is neither stale nor
	// foreign, and it is not judged: it is waited for. Only a task that has
	// stopped leaves a stale instance.
	Pending bool
}

// Instance is one Consul instance of the service as observed.
type Instance struct {
	ID      string
	Node    string
	Address string
	Port    int
	// Status is the aggregate of the instance's checks and its node's:
	// critical if any is critical, else warning if any is, else passing.
	// An instance without a check is passing, as Consul counts it.
	Status string
	// CheckIndex is the highest ModifyIndex of its checks: it changes with
	// every status change that reaches the catalog and with nothing else
	// (FACTS.md), so a passing instance whose CheckIndex moved between two
	// observations has left passing and come back in between.
	CheckIndex uint64
	// CreateIndex orders registrations: of two instances at one address the
	// newer belongs to the task there now.
	CreateIndex uint64
	// TTL is the registration's TTL from its Meta (micro_register_ttl); 0
	// when unknown.
	TTL time.Duration
}

// Observation is one look at both halves of the service.
type Observation struct {
	At        time.Time
	Tasks     []Task
	Instances []Instance
}

// Options are the gate's settings; zero values take the defaults.
type Options struct {
	// Service is the Consul name, used in messages.
	Service string
	// MinHealthy is how long an instance must pass without interruption.
	// 0: the instances' TTL from Meta, else DefaultMinHealthy.
	MinHealthy time.Duration
	// HealthyDeadline is how long a new task has to register and pass.
	// 0: 2 x TTL, at least MinHealthyDeadline.
	HealthyDeadline time.Duration
	// StaleAfter is how long an instance of a task that no longer runs is
	// left to its own process (which should deregister on its way out)
	// before microctl deregisters it. 0: the instance's TTL, else
	// DefaultMinHealthy.
	StaleAfter time.Duration
}

// Verdict is the gate's answer.
type Verdict string

// Verdicts.
const (
	Waiting   Verdict = "waiting"
	Converged Verdict = "converged"
	Failed    Verdict = "failed"
)

// TaskState is what the gate saw of one running task.
type TaskState struct {
	Task string `json:"task"`
	Slot int    `json:"slot"`
	// Instance is the instance at the task's address ("" when none).
	Instance string `json:"instance,omitempty"`
	Status   string `json:"status,omitempty"`
	// PassingFor is how long the instance has passed without interruption
	// as far as this gate observed.
	PassingFor time.Duration `json:"passing_for"`
	// Healthy: passing for at least min-healthy.
	Healthy bool   `json:"healthy"`
	Problem string `json:"problem,omitempty"`
}

// Stale is an instance whose task no longer runs.
type Stale struct {
	Instance Instance
	// For is how long it has been stale as far as this gate knows.
	For time.Duration
	// Task is the task it belonged to, "" when only a newer registration at
	// the same address says it is stale.
	Task string
}

// Decision is the gate's answer to one observation.
type Decision struct {
	Verdict Verdict
	// Reason says, in one sentence, why the gate waits or failed.
	Reason string
	Tasks  []TaskState
	// Stale are the instances of tasks that no longer run; Deregister those
	// of them left beyond their TTL, which microctl removes through their
	// owning agent.
	Stale      []Stale
	Deregister []Instance
	// Foreign are instances at no address any task of the service ever
	// had: registered from outside the stack. They are not the stack's to
	// remove and do not hold up convergence.
	Foreign []Instance
}

// Gate keeps the history of one service across observations. A Gate is
// not safe for concurrent use.
type Gate struct {
	o Options

	taskSeen   map[string]time.Time // task ID -> first observed running
	staleSeen  map[string]time.Time // instance ID -> first observed stale
	passSince  map[string]time.Time // instance ID -> start of its current passing run
	lastIndex  map[string]uint64    // instance ID -> CheckIndex last observed
	passedEver map[string]bool      // instance ID -> observed passing at some point
	failed     *Decision
	start      time.Time // the first observation
}

// New returns a gate for one service.
func New(o Options) *Gate {
	return &Gate{o: o,
		taskSeen: map[string]time.Time{}, staleSeen: map[string]time.Time{},
		passSince: map[string]time.Time{}, lastIndex: map[string]uint64{}, passedEver: map[string]bool{}}
}

// TTL returns the largest TTL among instances, 0 when none carries one.
func TTL(ins []Instance) time.Duration {
	var ttl time.Duration
	for _, in := range ins {
		ttl = max(ttl, in.TTL)
	}
	return ttl
}

// EffectiveMinHealthy is min-healthy as the gate applies it for a TTL
// (0: unknown).
func EffectiveMinHealthy(flag, ttl time.Duration) time.Duration {
	switch {
	case flag > 0:
		return flag
	case ttl > 0:
		return ttl
	}
	return DefaultMinHealthy
}

// EffectiveHealthyDeadline is the healthy deadline as the gate applies it
// for a TTL (0: unknown): 2 x TTL, at least MinHealthyDeadline, and never
// shorter than min-healthy plus the time to register.
func EffectiveHealthyDeadline(flag, minHealthy, ttl time.Duration) time.Duration {
	if flag > 0 {
		return flag
	}
	return max(2*ttl, MinHealthyDeadline, minHealthy+MinHealthyDeadline/2)
}

// Timings returns min-healthy and the healthy deadline the gate applies to
// the instances of one observation.
func (g *Gate) Timings(ins []Instance) (minHealthy, deadline time.Duration) {
	ttl := TTL(ins)
	minHealthy = EffectiveMinHealthy(g.o.MinHealthy, ttl)
	return minHealthy, EffectiveHealthyDeadline(g.o.HealthyDeadline, minHealthy, ttl)
}

// Observe takes one observation and decides. Once failed, a gate stays
// failed: a failure seen is a failure, whatever comes after.
func (g *Gate) Observe(ob Observation) Decision {
	now := ob.At
	if g.start.IsZero() {
		g.start = now
	}
	minHealthy, deadline := g.Timings(ob.Instances)

	// Addresses of running tasks, and of every task the engine still
	// remembers (its history), to tell stale from foreign instances.
	running := map[string]*Task{}
	pending := map[string]*Task{}
	known := map[string]*Task{}
	for i := range ob.Tasks {
		t := &ob.Tasks[i]
		for _, a := range t.Addrs {
			switch {
			case t.Running:
				running[a] = t
			case t.Pending:
				pending[a] = t
			default:
				if _, ok := known[a]; !ok {
					known[a] = t
				}
			}
		}
	}

	byAddr := map[string][]Instance{}
	for _, in := range ob.Instances {
		byAddr[in.Address] = append(byAddr[in.Address], in)
	}
	for a := range byAddr {
		// Newest registration first.
		slices.SortFunc(byAddr[a], func(x, y Instance) int {
			return cmp.Or(cmp.Compare(y.CreateIndex, x.CreateIndex), cmp.Compare(x.ID, y.ID))
		})
	}

	g.trackPassing(ob)

	var d Decision
	stale := map[string]bool{}
	markStale := func(in Instance, task string, since time.Time) {
		stale[in.ID] = true
		first, ok := g.staleSeen[in.ID]
		if !ok {
			first = now
			if !since.IsZero() && since.Before(now) {
				first = since
			}
			g.staleSeen[in.ID] = first
		}
		s := Stale{Instance: in, For: now.Sub(first), Task: task}
		d.Stale = append(d.Stale, s)
		after := g.o.StaleAfter
		if after == 0 {
			after = cmp.Or(in.TTL, DefaultMinHealthy)
		}
		if s.For >= after {
			d.Deregister = append(d.Deregister, in)
		}
	}

	var between []string // instances of tasks between lives
	// Instances at no running task's address: stale when a task of the
	// service once had the address, foreign otherwise.
	for _, in := range ob.Instances {
		if _, ok := running[in.Address]; ok {
			continue
		}
		if t, ok := pending[in.Address]; ok {
			// Registered by a task that is starting or stopping: not
			// stale (deregistering it would take a live instance out of
			// the gateways' sets), not foreign, but waited for. Any
			// staleness clock it had from an earlier look starts again
			// when its task stops.
			delete(g.staleSeen, in.ID)
			between = append(between, fmt.Sprintf("%s of task %s (starting or stopping)", in.ID, short(t.ID)))
			continue
		}
		if t, ok := known[in.Address]; ok {
			markStale(in, t.ID, t.Since)
			continue
		}
		d.Foreign = append(d.Foreign, in)
	}

	var notRegistered, critical, waiting, wentCritical []string
	tasks := slices.Clone(ob.Tasks)
	slices.SortFunc(tasks, func(x, y Task) int { return cmp.Or(cmp.Compare(x.Slot, y.Slot), cmp.Compare(x.ID, y.ID)) })
	for _, t := range tasks {
		if !t.Running {
			continue
		}
		first, ok := g.taskSeen[t.ID]
		if !ok {
			first = now
			if !t.Since.IsZero() && t.Since.Before(now) {
				first = t.Since
			}
			// A task already running when the gate began (an unchanged
			// service, a rollback's survivors) gets the deadline from
			// then: the gate never saw it unregistered before, and a
			// go-micro service deregistered by someone else registers
			// again on its next heartbeat. Failing it at first sight
			// failed a deploy on the cluster lab seconds after an operator
			// deregistered one instance of an unchanged greeter.
			if first.Before(g.start) {
				first = g.start
			}
			g.taskSeen[t.ID] = first
		}
		age := now.Sub(first)
		ts := TaskState{Task: t.ID, Slot: t.Slot}
		var mine []Instance
		for _, a := range t.Addrs {
			mine = append(mine, byAddr[a]...)
		}
		// A task's container keeps one address for life, so of several
		// instances at it the newest is this task's; the older ones were
		// left by an earlier task that had the address.
		if len(mine) > 1 {
			for _, old := range mine[1:] {
				if !stale[old.ID] {
					markStale(old, "", time.Time{})
				}
			}
			mine = mine[:1]
		}
		if len(mine) == 0 {
			ts.Problem = "not registered"
			if age >= deadline && t.Current {
				notRegistered = append(notRegistered, t.ID)
				ts.Problem = fmt.Sprintf("not registered within %s", deadline)
			} else {
				waiting = append(waiting, fmt.Sprintf("task %s not registered yet", short(t.ID)))
			}
			d.Tasks = append(d.Tasks, ts)
			continue
		}
		in := mine[0]
		ts.Instance, ts.Status = in.ID, in.Status
		if since, ok := g.passSince[in.ID]; ok {
			ts.PassingFor = now.Sub(since)
		}
		switch {
		case in.Status == Passing && ts.PassingFor >= minHealthy:
			ts.Healthy = true
		case in.Status == Critical && g.passedEver[in.ID]:
			// It passed, then stopped: a version that goes critical
			// during the update is a failure, not a wait. (A TTL check
			// starts critical until its first pass: that is a wait.)
			ts.Problem = "went critical"
			if t.Current {
				wentCritical = append(wentCritical, in.ID)
			} else {
				waiting = append(waiting, fmt.Sprintf("%s (previous version) is critical", in.ID))
			}
		case age >= deadline && t.Current && in.Status != Passing:
			// Passing but not yet for min-healthy is still a wait: a task
			// older than the deadline (a redeploy, a rollback to it) is
			// judged from when the gate first saw it pass.
			critical = append(critical, in.ID)
			ts.Problem = fmt.Sprintf("not passing within %s", deadline)
		case in.Status == Passing:
			waiting = append(waiting, fmt.Sprintf("%s passing for %s of %s", in.ID, ts.PassingFor.Truncate(time.Second), minHealthy))
		default:
			waiting = append(waiting, fmt.Sprintf("%s is %s", in.ID, in.Status))
		}
		d.Tasks = append(d.Tasks, ts)
	}

	switch {
	case g.failed != nil:
		f := *g.failed
		f.Tasks, f.Stale, f.Deregister, f.Foreign = d.Tasks, d.Stale, d.Deregister, d.Foreign
		return f
	case len(wentCritical) > 0:
		d.Verdict = Failed
		d.Reason = fmt.Sprintf("%s of the new version went critical in Consul %s during the update", plural(len(wentCritical), "instance"), g.o.Service)
	case len(notRegistered)+len(critical) > 0:
		d.Verdict = Failed
		d.Reason = lateReason(len(notRegistered), len(critical), currentRunning(tasks), g.o.Service, deadline, minHealthy)
	case len(waiting) > 0:
		d.Verdict = Waiting
		d.Reason = strings.Join(waiting, "; ")
	case len(between) > 0:
		d.Verdict = Waiting
		d.Reason = "waiting for " + strings.Join(between, ", ")
	case len(d.Stale) > 0:
		d.Verdict = Waiting
		ids := make([]string, len(d.Stale))
		for i, s := range d.Stale {
			ids[i] = s.Instance.ID
		}
		d.Reason = fmt.Sprintf("%s of tasks that no longer run still registered: %s", plural(len(d.Stale), "instance"), strings.Join(ids, ", "))
	default:
		// Also when nothing runs: Swarm's half decides whether that is
		// right (a service scaled to 0); the gate has nothing against it.
		d.Verdict = Converged
	}
	if d.Verdict == Failed {
		f := d
		g.failed = &f
	}
	return d
}

// trackPassing updates, per instance, the start of its current run of
// passing observations. A status other than passing ends the run, and so
// does a CheckIndex that moved while the status stayed passing: the check
// left passing and came back between two observations (a flap).
func (g *Gate) trackPassing(ob Observation) {
	seen := map[string]bool{}
	for _, in := range ob.Instances {
		seen[in.ID] = true
		prevIndex, hadIndex := g.lastIndex[in.ID]
		g.lastIndex[in.ID] = in.CheckIndex
		if in.Status != Passing {
			delete(g.passSince, in.ID)
			continue
		}
		_, passing := g.passSince[in.ID]
		if passing && hadIndex && prevIndex != in.CheckIndex {
			g.passSince[in.ID] = ob.At
			continue
		}
		if !passing {
			g.passSince[in.ID] = ob.At
		}
		g.passedEver[in.ID] = true
	}
	for id := range g.passSince {
		if !seen[id] {
			delete(g.passSince, id)
		}
	}
}

// lateReason is the failure sentence for tasks past the healthy deadline,
// e.g. "3 new tasks ran, none registered in Consul go.micro.srv.greeter
// within 30s".
func lateReason(notRegistered, notPassing, running int, service string, deadline, minHealthy time.Duration) string {
	var parts []string
	switch {
	case notRegistered > 0 && notRegistered >= running:
		parts = append(parts, fmt.Sprintf("%s ran, none registered in Consul %s within %s", plural(running, "new task"), service, deadline))
	case notRegistered > 0:
		parts = append(parts, fmt.Sprintf("%s ran, %d not registered in Consul %s within %s", plural(running, "new task"), notRegistered, service, deadline))
	}
	if notPassing > 0 {
		parts = append(parts, fmt.Sprintf("%s registered in Consul %s but not passing within %s", plural(notPassing, "new task"), service, deadline))
	}
	return strings.Join(parts, "; ")
}

func currentRunning(tasks []Task) int {
	n := 0
	for _, t := range tasks {
		if t.Running && t.Current {
			n++
		}
	}
	return n
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// short is a task ID as docker ps shows it.
func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
