package stack

import (
	"context"
	"fmt"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stringid"

	"github.com/microctl/microctl/internal/textutil"
)

// rollback undoes a failed deploy: every service it updated goes back to
// its previous spec through Swarm's own rollback, every service it created
// is removed (and its tasks waited out), and the networks, configs and
// secrets it created are removed once nothing uses them. parent is the
// user's context: its cancellation (Ctrl-C) still stops the wait.
func (d *deployer) rollback(ctx, parent context.Context) []ServiceResult {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	go func() {
		select {
		case <-parent.Done():
			if parent.Err() == context.Canceled {
				cancel()
			}
		case <-ctx.Done():
		}
	}()
	wo := d.watchOpts
	wo.Reporter, wo.StopOnFailure = d.rep, false
	w := NewWatcher(d.api, wo)

	d.mu.Lock()
	created, updated := append([]ServicePlan(nil), d.created...), append([]ServicePlan(nil), d.updated...)
	d.mu.Unlock()

	var results []ServiceResult
	for _, sp := range updated {
		w.Expect(sp.FullName, PhaseRollingBack, "")
		if d.gate.gated(sp.FullName) {
			// Rolled back means the previous version serves again, by
			// the same definition: Swarm and Consul.
			d.gate.reset(sp.FullName, sp.ID)
			w.SetGated(sp.FullName, true)
		}
	}
	for _, sp := range updated {
		r := ServiceResult{Name: sp.Name, FullName: sp.FullName, ID: sp.ID, Action: ActionUpdate}
		if err := d.rollbackOne(ctx, w, sp); err != nil {
			w.Finish(sp.FullName, PhaseFailed, "rollback failed: "+textutil.OneLine(err.Error()))
		}
		results = append(results, r)
	}
	var removedIDs, jobs []string
	for _, sp := range created {
		r := ServiceResult{Name: sp.Name, FullName: sp.FullName, ID: sp.ID, Action: ActionCreate, Phase: PhaseRemoved,
			Message: "removed: created by the failed deploy"}
		if err := d.api.ServiceRemove(ctx, sp.ID); err != nil && !cerrdefs.IsNotFound(err) {
			r.Phase, r.Message = PhaseFailed, "could not remove: "+textutil.OneLine(err.Error())
		} else {
			removedIDs = append(removedIDs, sp.ID)
			if sp.def.IsJob() {
				jobs = append(jobs, sp.ID)
			}
			d.rep.Event("removed service " + sp.FullName + " (created by this deploy)")
		}
		results = append(results, r)
	}
	if err := w.Run(ctx, nil); err != nil && ctx.Err() == nil {
		d.warnf("rollback: %v", err)
	}
	states := map[string]State{}
	for _, s := range w.States() {
		states[s.Service] = s
	}
	for i := range results {
		if st, ok := states[results[i].FullName]; ok {
			results[i].Phase, results[i].Running, results[i].Desired, results[i].Message = st.Phase, st.Running, st.Desired, st.Message
		}
	}
	if err := waitTasksGone(ctx, d.api, d.plan.Stack, removedIDs, jobs, func(w string) { d.warnf("%s", w) }); err != nil {
		d.warnf("tasks of removed services still stopping: %v", err)
	}
	d.undoCreatedObjects(ctx)
	return results
}

// rollbackOne asks Swarm to roll sp back to its previous spec, unless
// Swarm already does (failure_action: rollback).
func (d *deployer) rollbackOne(ctx context.Context, w *Watcher, sp ServicePlan) error {
	svc, _, err := d.api.ServiceInspectWithRaw(ctx, sp.ID, swarm.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	if u := svc.UpdateStatus; u != nil && u.StartedAt != nil && !u.StartedAt.Before(d.start.Add(-time.Second)) {
		switch u.State {
		case swarm.UpdateStateRollbackStarted, swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
			d.rep.Event(fmt.Sprintf("service %s: Swarm is already rolling it back", sp.FullName))
			w.WatchSince(sp.FullName, sp.ID, KindRollback, svc.Spec, d.start)
			return nil
		}
	}
	if svc.PreviousSpec == nil {
		return fmt.Errorf("service %s has no previous spec to roll back to", sp.FullName)
	}
	if _, err := d.api.ServiceUpdate(ctx, sp.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{Rollback: "previous"}); err != nil {
		return err
	}
	d.rep.Event(fmt.Sprintf("rolling back service %s to its previous spec", sp.FullName))
	w.Watch(sp.FullName, sp.ID, KindRollback, svc.Spec)
	return nil
}

// undoCreatedObjects removes the networks, configs and secrets this deploy
// created, if nothing uses them after the rollback.
func (d *deployer) undoCreatedObjects(ctx context.Context) {
	all, err := d.api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return
	}
	refs := liveRefs(all)
	for _, id := range d.newConfigs {
		if !refs.configs[id] {
			_ = d.api.ConfigRemove(ctx, id)
		}
	}
	for _, id := range d.newSecrets {
		if !refs.secrets[id] {
			_ = d.api.SecretRemove(ctx, id)
		}
	}
	for _, n := range d.newNets {
		if !refs.networks[n] {
			if err := removeNetwork(ctx, d.api, n, 15*time.Second); err == nil {
				d.rep.Event("removed network " + n + " (created by this deploy)")
			}
		}
	}
}

// waitTasksGone waits until every task of the given (removed) services has
// stopped: their containers have exited and left the stack's networks.
// Tasks are found through the stack label, since a removed service can no
// longer be named in a filter. A finished task may stay listed (Swarm
// 20.10 keeps the completed tasks of a removed job for ever); it holds
// nothing, so it does not count.
//
// jobs are the removed services that were jobs: Swarm 20.10 neither stops
// their running tasks nor removes their containers, and tasks still being
// started when the service went go on to run. On this node their
// containers are removed here, on every poll, which ends those tasks; a
// job task running on another node is reported and not waited for.
func waitTasksGone(ctx context.Context, api StackAPI, stack string, serviceIDs, jobs []string, warn func(string)) error {
	if len(serviceIDs) == 0 {
		return nil
	}
	gone := map[string]bool{}
	for _, id := range serviceIDs {
		gone[id] = true
	}
	var localNode string
	if len(jobs) > 0 {
		info, err := api.Info(ctx)
		if err != nil {
			return err
		}
		localNode = info.Swarm.NodeID
	}
	remote, reaped := map[string]bool{}, map[string]bool{}
	f := stackFilter(stack)
	for {
		tasks, err := api.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		if err != nil {
			return err
		}
		left := 0
		for _, t := range tasks {
			if !gone[t.ServiceID] {
				continue
			}
			finished := taskFinished(t.Status.State)
			if slices.Contains(jobs, t.ServiceID) {
				if t.NodeID != "" && t.NodeID != localNode {
					if !finished && !remote[t.ID] {
						remote[t.ID] = true
						warn(fmt.Sprintf("task %s of a removed job keeps running on node %s (Swarm does not stop it): remove its container there", stringid.TruncateID(t.ID), stringid.TruncateID(t.NodeID)))
					}
					continue
				}
				// A completed job's exited container is left behind too.
				if !reaped[t.ID] {
					removeTaskContainers(ctx, api, t.ID, warn)
					reaped[t.ID] = finished
				}
			}
			if !finished {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d tasks left: %w", left, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// removeTaskContainers force-removes the containers of one task on this
// node, if it has any yet.
func removeTaskContainers(ctx context.Context, api StackAPI, taskID string, warn func(string)) {
	cs, err := api.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.task.id="+taskID))})
	if err != nil {
		warn("could not list the containers of a removed job: " + textutil.OneLine(err.Error()))
		return
	}
	for _, c := range cs {
		if err := api.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			warn(fmt.Sprintf("could not remove container %s of a removed job: %s", stringid.TruncateID(c.ID), textutil.OneLine(err.Error())))
		}
	}
}

// taskFinished reports whether a task's container is gone for good.
func taskFinished(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}
