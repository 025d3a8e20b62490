package swarm

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// StatusAPI is what Status needs from the Docker client.
type StatusAPI interface {
	Info(ctx context.Context) (system.Info, error)
	SwarmInspect(ctx context.Context) (swarm.Swarm, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	DaemonHost() string
}

// StatusReport is the swarm as `swarm status` shows it. The JSON field
// names are part of `swarm status -o json` and stay stable.
type StatusReport struct {
	SwarmID     string           `json:"swarm_id"`
	CreatedAt   time.Time        `json:"created_at"`
	NodeID      string           `json:"node_id"`
	Role        string           `json:"role"`
	NodeAddr    string           `json:"node_addr"`
	ManagerAddr string           `json:"manager_addr"`
	Managers    int              `json:"managers"`
	Nodes       []SwarmNode      `json:"nodes"`
	Networks    []OverlayNetwork `json:"networks"`
	// Healthy is false when a node is not ready or a manager is not
	// reachable; Problems says which, one line each.
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
}

// Status reads the swarm from a manager: its ID, this node's role, every
// node, the overlay networks. A worker or an engine outside any swarm is a
// *NotManagerError (only managers know the nodes).
func Status(ctx context.Context, cli StatusAPI) (StatusReport, error) {
	rep := StatusReport{Nodes: []SwarmNode{}, Networks: []OverlayNetwork{}, Problems: []string{}}
	info, err := RequireManager(ctx, cli)
	if err != nil {
		return rep, err
	}
	host := cli.DaemonHost()
	sw, err := cli.SwarmInspect(ctx)
	if err != nil {
		return rep, ClassifyEngine(host, err)
	}
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return rep, ClassifyEngine(host, err)
	}
	rep.SwarmID = sw.ID
	rep.CreatedAt = sw.CreatedAt
	rep.NodeID = info.Swarm.NodeID
	rep.Role = roleOf(info.Swarm)
	rep.NodeAddr = info.Swarm.NodeAddr
	rep.ManagerAddr = managerAddrOf(info.Swarm)
	for _, n := range nodes {
		sn := NewSwarmNode(n, rep.NodeID)
		if sn.Role == string(swarm.NodeRoleManager) {
			rep.Managers++
		}
		rep.Nodes = append(rep.Nodes, sn)
	}
	SortNodes(rep.Nodes)
	if rep.Networks, err = ListOverlays(ctx, cli); err != nil {
		return rep, err
	}
	if p := NodeProblems(rep.Nodes); len(p) > 0 {
		rep.Problems = p
	}
	rep.Healthy = len(rep.Problems) == 0
	return rep, nil
}
