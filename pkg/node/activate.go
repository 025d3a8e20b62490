package node

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// Activate reverses a drain: availability active, then maintenance off for
// the instances on the node that are in maintenance; with Rebalance, it
// force-updates every replicated service with running tasks, so that Swarm
// spreads them over the nodes again (it does not move running tasks by
// itself when a node comes back).
func Activate(ctx context.Context, d DockerAPI, c ConsulAPI, name string, opts DrainOptions) (*Result, error) {
	opts.defaults()
	n, _, err := managedNode(ctx, d, name)
	if err != nil {
		return nil, err
	}
	r := &drainer{d: d, c: c, opts: opts, res: &Result{Node: n.Description.Hostname, NodeID: n.ID}, node: n}
	start := time.Now()
	if n.Spec.Availability != swarm.NodeAvailabilityActive {
		if err := r.setAvailability(ctx, swarm.NodeAvailabilityActive); err != nil {
			return r.res, err
		}
		r.done(StepActivate, fmt.Sprintf("availability %s -> active", n.Spec.Availability), start)
	} else {
		r.done(StepActivate, "already active", start)
	}
	if c != nil {
		start = time.Now()
		tasks, err := r.runningTasks(ctx)
		if err != nil {
			return r.res, err
		}
		cat, err := c.Catalog(ctx)
		if err != nil {
			return r.res, err
		}
		off := 0
		for _, in := range instancesOn(cat, tasks, n.ID) {
			if !inMaintenance(in) {
				continue
			}
			addr := ""
			if a := cat.Node(in.Node); a != nil {
				addr = a.Address
			}
			if err := c.SetMaintenance(ctx, in.Node, addr, in.ID, false, ""); err != nil {
				return r.res, fmt.Errorf("maintenance off for %s: %w", in.ID, err)
			}
			r.res.Instances = append(r.res.Instances, in.ID)
			off++
		}
		r.done(StepMaintOff, fmt.Sprintf("maintenance off for %d instance(s)", off), start)
	}
	if opts.Rebalance {
		start = time.Now()
		services, err := d.ServiceList(ctx, swarm.ServiceListOptions{})
		if err != nil {
			return r.res, fmt.Errorf("list services: %w", err)
		}
		for _, s := range services {
			if s.Spec.Mode.Replicated == nil || s.Spec.Mode.Replicated.Replicas == nil || *s.Spec.Mode.Replicated.Replicas < 2 {
				continue // one task has nowhere better to go; global services follow nodes already
			}
			spec := s.Spec
			spec.TaskTemplate.ForceUpdate++
			if _, err := d.ServiceUpdate(ctx, s.ID, s.Meta.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
				return r.res, fmt.Errorf("rebalance %s: %w", s.Spec.Name, err)
			}
			r.res.Services = append(r.res.Services, s.Spec.Name)
		}
		r.done(StepRebalance, fmt.Sprintf("%d service(s) force-updated to spread their tasks (their update policy applies)", len(r.res.Services)), start)
	}
	return r.res, nil
}
