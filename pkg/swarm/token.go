package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// TokenAPI is what JoinToken needs from the Docker client.
type TokenAPI interface {
	Info(ctx context.Context) (system.Info, error)
	SwarmInspect(ctx context.Context) (swarm.Swarm, error)
	SwarmUpdate(ctx context.Context, version swarm.Version, spec swarm.Spec, flags swarm.UpdateFlags) error
	DaemonHost() string
}

// TokenResult is a join token and the command that uses it. The JSON field
// names are part of `swarm token -o json`.
type TokenResult struct {
	Role        string `json:"role"`
	Token       string `json:"token"`
	Command     string `json:"command"`
	ManagerAddr string `json:"manager_addr"`
	Rotated     bool   `json:"rotated"`
}

// ParseRole parses the ROLE argument of `swarm token`.
func ParseRole(v string) (swarm.NodeRole, error) {
	switch r := swarm.NodeRole(v); r {
	case swarm.NodeRoleWorker, swarm.NodeRoleManager:
		return r, nil
	}
	return "", fmt.Errorf("invalid role %q: want worker or manager", v)
}

// JoinToken returns the join token for role, after rotating it when rotate
// is set (the old token stops working; nodes already joined are not
// affected). Only a manager knows the tokens.
func JoinToken(ctx context.Context, cli TokenAPI, role swarm.NodeRole, rotate bool) (TokenResult, error) {
	res := TokenResult{Role: string(role)}
	if _, err := ParseRole(string(role)); err != nil {
		return res, err
	}
	info, err := RequireManager(ctx, cli)
	if err != nil {
		return res, err
	}
	host := cli.DaemonHost()
	sw, err := cli.SwarmInspect(ctx)
	if err != nil {
		return res, ClassifyEngine(host, err)
	}
	if rotate {
		flags := swarm.UpdateFlags{RotateWorkerToken: role == swarm.NodeRoleWorker, RotateManagerToken: role == swarm.NodeRoleManager}
		if err := cli.SwarmUpdate(ctx, sw.Version, sw.Spec, flags); err != nil {
			return res, fmt.Errorf("rotate the %s token: %w", role, ClassifyEngine(host, err))
		}
		res.Rotated = true
		if sw, err = cli.SwarmInspect(ctx); err != nil {
			return res, fmt.Errorf("token rotated, but reading it back failed (run microctl swarm token %s): %w", role, ClassifyEngine(host, err))
		}
	}
	res.Token = sw.JoinTokens.Worker
	if role == swarm.NodeRoleManager {
		res.Token = sw.JoinTokens.Manager
	}
	res.ManagerAddr = managerAddrOf(info.Swarm)
	res.Command = JoinCommand(res.Token, res.ManagerAddr)
	return res, nil
}
