package swarm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/pkg/stringid"
)

// LeaveAPI is what Leave needs from the Docker client.
type LeaveAPI interface {
	Info(ctx context.Context) (system.Info, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	ConfigList(ctx context.Context, options swarm.ConfigListOptions) ([]swarm.Config, error)
	SecretList(ctx context.Context, options swarm.SecretListOptions) ([]swarm.Secret, error)
	SwarmLeave(ctx context.Context, force bool) error
	DaemonHost() string
}

// LeavePlan is what leaving would mean, read before anything is done.
type LeavePlan struct {
	Host   string
	State  string // inactive, worker, manager, or the engine's state (pending, locked, error)
	NodeID string
	// Managers counts the swarm's managers; Reachable those reachable
	// (this one included). Only known on a manager.
	Managers, Reachable int
	// OtherNodes counts the nodes other than this one.
	OtherNodes int
	// What the swarm holds, destroyed with its last manager.
	Services []string
	Networks []string // user-defined swarm networks (ingress is not counted)
	Configs  int
	Secrets  int
}

// LastManager reports whether this node is the swarm's only manager.
func (p LeavePlan) LastManager() bool { return p.State == "manager" && p.Managers <= 1 }

// LosesQuorum reports whether the remaining managers would lose the Raft
// quorum, with docker's own rule (reachable-2 <= unreachable).
func (p LeavePlan) LosesQuorum() bool {
	unreachable := p.Managers - p.Reachable
	return p.State == "manager" && p.Reachable-2 <= unreachable
}

// LastManagerError: leaving would destroy the swarm. It says what is in it.
type LastManagerError struct{ Plan LeavePlan }

func (e *LastManagerError) Error() string {
	p := e.Plan
	parts := []string{
		countNamed(len(p.Services), "service", p.Services),
		countNamed(len(p.Networks), "network", p.Networks),
		countNamed(p.Configs, "config", nil),
		countNamed(p.Secrets, "secret", nil),
	}
	msg := fmt.Sprintf("this node is the last manager of the swarm: leaving destroys the swarm and everything in it: %s", strings.Join(parts, ", "))
	if p.OtherNodes > 0 {
		msg += fmt.Sprintf("; %s lose their swarm", countNamed(p.OtherNodes, "other node", nil))
	}
	return msg
}

// Hint says what to do about it.
func (e *LastManagerError) Hint() string {
	return "microctl swarm leave --force destroys it anyway"
}

// ManagerLeaveError: a manager that is not the last leaves only with
// --force, like docker: demoting it first keeps the swarm's quorum right.
type ManagerLeaveError struct{ Plan LeavePlan }

func (e *ManagerLeaveError) Error() string {
	p := e.Plan
	if p.LosesQuorum() {
		return fmt.Sprintf("this node is a manager: leaving leaves %d of %d managers reachable and the swarm loses its Raft quorum (it stops accepting changes)", p.Reachable-1, p.Managers-1)
	}
	return fmt.Sprintf("this node is one of %d managers: leaving without demoting it first leaves a manager entry behind", p.Managers)
}

// Hint says what to do about it.
func (e *ManagerLeaveError) Hint() string {
	return fmt.Sprintf("demote it first with docker node demote %s on another manager, or use --force", stringid.TruncateID(e.Plan.NodeID))
}

func countNamed(n int, noun string, names []string) string {
	s := fmt.Sprintf("%d %s", n, noun)
	if n != 1 {
		s += "s"
	}
	if len(names) > 0 {
		shown := names
		if len(shown) > 5 {
			shown = append(shown[:5:5], "...")
		}
		s += " (" + strings.Join(shown, ", ") + ")"
	}
	return s
}

// PlanLeave reads what leaving would mean. It changes nothing.
func PlanLeave(ctx context.Context, cli LeaveAPI) (LeavePlan, error) {
	host := cli.DaemonHost()
	p := LeavePlan{Host: host}
	info, err := cli.Info(ctx)
	if err != nil {
		return p, ClassifyEngine(host, err)
	}
	sw := info.Swarm
	p.NodeID = sw.NodeID
	switch {
	case sw.LocalNodeState == swarm.LocalNodeStateInactive || sw.LocalNodeState == "":
		p.State = "inactive"
		return p, nil
	case sw.LocalNodeState == swarm.LocalNodeStateActive && !sw.ControlAvailable:
		p.State = "worker"
		return p, nil
	case sw.LocalNodeState != swarm.LocalNodeStateActive:
		p.State = string(sw.LocalNodeState)
		return p, nil
	}
	p.State = "manager"
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return p, ClassifyEngine(host, err)
	}
	for _, n := range nodes {
		if n.ID != p.NodeID {
			p.OtherNodes++
		}
		if n.ManagerStatus != nil {
			p.Managers++
			if n.ManagerStatus.Reachability == swarm.ReachabilityReachable {
				p.Reachable++
			}
		}
	}
	services, err := cli.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return p, ClassifyEngine(host, err)
	}
	for _, s := range services {
		p.Services = append(p.Services, s.Spec.Name)
	}
	sort.Strings(p.Services)
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("scope", SwarmScope))})
	if err != nil {
		return p, ClassifyEngine(host, err)
	}
	for _, n := range nets {
		if n.Scope == SwarmScope && !n.Ingress {
			p.Networks = append(p.Networks, n.Name)
		}
	}
	sort.Strings(p.Networks)
	configs, err := cli.ConfigList(ctx, swarm.ConfigListOptions{})
	if err != nil {
		return p, ClassifyEngine(host, err)
	}
	p.Configs = len(configs)
	secrets, err := cli.SecretList(ctx, swarm.SecretListOptions{})
	if err != nil {
		return p, ClassifyEngine(host, err)
	}
	p.Secrets = len(secrets)
	return p, nil
}

// DecideLeave is the guard of `swarm leave`, without the engine: whether to
// call the engine's leave, and with which force. Not in a swarm: nothing
// to do. A worker leaves. A manager leaves only with --force; the last
// manager's refusal says what the swarm holds, which leaving destroys.
func DecideLeave(p LeavePlan, force bool) (leave, engineForce bool, err error) {
	switch p.State {
	case "inactive":
		return false, false, nil
	case "worker":
		return true, force, nil
	case "manager":
		if force {
			return true, true, nil
		}
		if p.LastManager() {
			return false, false, &LastManagerError{Plan: p}
		}
		return false, false, &ManagerLeaveError{Plan: p}
	case string(swarm.LocalNodeStateLocked):
		if !force {
			return false, false, &NotManagerError{Host: p.Host, State: "locked"}
		}
		return true, true, nil
	}
	// pending or error: let the engine judge; --force gives up a join.
	return true, force, nil
}

// LeaveResult is what Leave did.
type LeaveResult struct {
	Left bool // false: the engine was in no swarm
	Plan LeavePlan
}

// Leave makes the engine leave its swarm, behind DecideLeave's guard.
func Leave(ctx context.Context, cli LeaveAPI, force bool) (LeaveResult, error) {
	p, err := PlanLeave(ctx, cli)
	res := LeaveResult{Plan: p}
	if err != nil {
		return res, err
	}
	leave, engineForce, err := DecideLeave(p, force)
	if err != nil || !leave {
		return res, err
	}
	if err := cli.SwarmLeave(ctx, engineForce); err != nil {
		return res, fmt.Errorf("swarm leave: %w", ClassifyEngine(p.Host, err))
	}
	res.Left = true
	return res, nil
}
