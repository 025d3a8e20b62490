package mesh

import (
	"context"
	"fmt"
	"time"
)

// TaskRow is one running task of a mesh service with its instance, as
// `microctl ps` shows it.
type TaskRow struct {
	Service  string `json:"service"`
	Consul   string `json:"consul_service"`
	Task     string `json:"task"`
	Slot     int    `json:"slot"`
	Address  string `json:"address,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Status is the instance's check status, "" without an instance.
	Status string `json:"status,omitempty"`
	// Up is how long the task has been running (the engine's timestamp).
	// Consul keeps no time for a check's last transition, so how long an
	// instance has passed is only known to a watch (deploy's gate), not
	// to one read.
	Up time.Duration `json:"up_seconds"`
}

// Problem is a task without an instance or an instance without a task.
type Problem struct {
	Service string `json:"service"`
	Consul  string `json:"consul_service"`
	// Kind is "silent-task" (running, no instance at its address) or
	// "orphan-instance" (no running task at its address).
	Kind     string `json:"kind"`
	Task     string `json:"task,omitempty"`
	Instance string `json:"instance,omitempty"`
	Address  string `json:"address,omitempty"`
	Status   string `json:"status,omitempty"`
	Detail   string `json:"detail"`
}

// Report is one read of a mesh service's two halves.
type Report struct {
	Tasks    []TaskRow `json:"tasks"`
	Problems []Problem `json:"problems"`
}

// Inspect reads svc once and matches its running tasks with its
// instances.
func (c *Checker) Inspect(ctx context.Context, svc Service) (Report, error) {
	ob, _, err := c.observe(ctx, svc)
	if err != nil {
		return Report{}, err
	}
	return Match(svc, ob), nil
}

// Match pairs one observation's running tasks with instances: every
// running task should have exactly one instance at its address, every
// instance a running task.
func Match(svc Service, ob Observation) Report {
	g := New(Options{Service: svc.Consul})
	d := g.Observe(ob)
	byTask := map[string]Task{}
	for _, t := range ob.Tasks {
		byTask[t.ID] = t
	}
	status := map[string]Instance{}
	for _, in := range ob.Instances {
		status[in.ID] = in
	}
	r := Report{Tasks: []TaskRow{}, Problems: []Problem{}}
	for _, ts := range d.Tasks {
		t := byTask[ts.Task]
		row := TaskRow{Service: svc.Name, Consul: svc.Consul, Task: ts.Task, Slot: ts.Slot, Instance: ts.Instance, Status: ts.Status}
		if len(t.Addrs) > 0 {
			row.Address = t.Addrs[0]
		}
		if !t.Since.IsZero() {
			row.Up = ob.At.Sub(t.Since).Truncate(time.Second)
		}
		r.Tasks = append(r.Tasks, row)
		if ts.Instance == "" {
			r.Problems = append(r.Problems, Problem{Service: svc.Name, Consul: svc.Consul, Kind: "silent-task", Task: ts.Task, Address: row.Address,
				Detail: fmt.Sprintf("task %s runs (up %s) but no instance of %s is registered at %s", short(ts.Task), row.Up, svc.Consul, row.Address)})
		}
	}
	for _, s := range d.Stale {
		detail := fmt.Sprintf("instance %s at %s: its task no longer runs", s.Instance.ID, s.Instance.Address)
		if s.Task == "" {
			detail = fmt.Sprintf("instance %s at %s: a newer instance holds the address", s.Instance.ID, s.Instance.Address)
		}
		r.Problems = append(r.Problems, Problem{Service: svc.Name, Consul: svc.Consul, Kind: "orphan-instance", Task: s.Task,
			Instance: s.Instance.ID, Address: s.Instance.Address, Status: s.Instance.Status, Detail: detail})
	}
	for _, in := range d.Foreign {
		r.Problems = append(r.Problems, Problem{Service: svc.Name, Consul: svc.Consul, Kind: "orphan-instance",
			Instance: in.ID, Address: in.Address, Status: status[in.ID].Status,
			Detail: fmt.Sprintf("instance %s at %s: no task of %s has that address", in.ID, in.Address, svc.Name)})
	}
	return r
}
