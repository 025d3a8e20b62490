package swarm

import (
	"fmt"
	"sort"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stringid"
)

// SwarmNode is one node as `swarm status` shows it. The JSON field names
// are part of `swarm status -o json` and stay stable.
type SwarmNode struct {
	ID           string `json:"id"`
	Hostname     string `json:"hostname"`
	Role         string `json:"role"`         // manager or worker
	Availability string `json:"availability"` // active, pause or drain
	State        string `json:"state"`        // ready, down, disconnected or unknown
	Addr         string `json:"addr"`
	// ManagerReachability is reachable, unreachable or unknown for a
	// manager, and "" for a worker.
	ManagerReachability string `json:"manager_reachability"`
	Leader              bool   `json:"leader"`
	EngineVersion       string `json:"engine_version"`
	Message             string `json:"message"`
	Self                bool   `json:"self"` // the node microctl talks to
}

// NewSwarmNode converts the engine's view of a node.
func NewSwarmNode(n swarm.Node, selfID string) SwarmNode {
	s := SwarmNode{
		ID: n.ID, Hostname: n.Description.Hostname,
		Role: string(n.Spec.Role), Availability: string(n.Spec.Availability),
		State: string(n.Status.State), Addr: n.Status.Addr,
		EngineVersion: n.Description.Engine.EngineVersion,
		Message:       n.Status.Message,
		Self:          n.ID == selfID,
	}
	if n.ManagerStatus != nil {
		s.ManagerReachability = string(n.ManagerStatus.Reachability)
		s.Leader = n.ManagerStatus.Leader
		if s.Addr == "" || s.Addr == "0.0.0.0" {
			s.Addr = n.ManagerStatus.Addr
		}
	}
	return s
}

// SortNodes orders nodes for people: the leader, other managers, then
// workers, each by hostname and ID.
func SortNodes(nodes []SwarmNode) {
	rank := func(n SwarmNode) int {
		switch {
		case n.Leader:
			return 0
		case n.Role == string(swarm.NodeRoleManager):
			return 1
		}
		return 2
	}
	sort.SliceStable(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		if a.Hostname != b.Hostname {
			return a.Hostname < b.Hostname
		}
		return a.ID < b.ID
	})
}

// NodeProblems lists what makes the swarm unhealthy: a node that is not
// ready, a manager that is not reachable. A drained or paused node is the
// operator's choice, not a problem.
func NodeProblems(nodes []SwarmNode) []string {
	var p []string
	for _, n := range nodes {
		name := fmt.Sprintf("%s (%s)", n.Hostname, stringid.TruncateID(n.ID))
		if n.State != string(swarm.NodeStateReady) {
			msg := fmt.Sprintf("node %s is %s", name, n.State)
			if n.Message != "" {
				msg += ": " + n.Message
			}
			p = append(p, msg)
		}
		if n.Role == string(swarm.NodeRoleManager) && n.ManagerReachability != string(swarm.ReachabilityReachable) {
			p = append(p, fmt.Sprintf("manager %s is %s", name, orNone(n.ManagerReachability)))
		}
	}
	return p
}
