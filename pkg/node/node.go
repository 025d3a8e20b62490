// Package node lists the swarm's nodes with their tasks and Consul agents,
// and drains or re-activates a node taking both Swarm and Consul into
// account: the node's instances go into Consul maintenance first (so
// gateways stop routing to them at once), and only once they are out of
// every passing set is the node drained in Swarm; the drain is over when
// its tasks run elsewhere and pass in Consul. Swarm alone would stop the
// tasks while Consul still lists them passing, and clients would keep
// dialling them until their TTL ran out.
package node

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/registry"
	mswarm "github.com/microctl/microctl/pkg/swarm"
)

// DockerAPI is the part of the Docker client this package needs.
type DockerAPI interface {
	mswarm.InfoAPI
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
	NodeUpdate(ctx context.Context, nodeID string, version swarm.Version, node swarm.NodeSpec) error
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
}

// ConsulAPI is what this package needs of Consul. Maintenance is set
// through the agent that owns the instance (agentNode): Consul accepts it
// only there.
type ConsulAPI interface {
	Catalog(ctx context.Context) (*registry.Catalog, error)
	SetMaintenance(ctx context.Context, agentNode, agentAddr, serviceID string, enable bool, reason string) error
}

// Row is one node in `node ls`. JSON field names stay stable.
type Row struct {
	mswarm.SwarmNode
	// Tasks counts running tasks per stack ("" for services outside any
	// stack).
	Tasks map[string]int `json:"tasks"`
	// ConsulAgent is the Consul node (agent) on this host, "" when none
	// was found; ConsulHealth its serfHealth status ("unknown" when Consul
	// could not be read).
	ConsulAgent  string `json:"consul_agent"`
	ConsulHealth string `json:"consul_health"`
	// Maintenance lists instances on this node in Consul maintenance.
	Maintenance int `json:"instances_in_maintenance"`
}

// List returns every node with its tasks and Consul agent. When Consul
// cannot be read the rows say "unknown" and the error is returned as a
// warning alongside them.
func List(ctx context.Context, d DockerAPI, c ConsulAPI) ([]Row, error, error) {
	info, err := mswarm.RequireManager(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	nodes, err := d.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	tasks, err := d.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	services, err := d.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	stackOf := map[string]string{}
	for _, s := range services {
		stackOf[s.ID] = s.Spec.Labels["com.docker.stack.namespace"]
	}
	var cat *registry.Catalog
	var warn error
	if c != nil {
		if cat, err = c.Catalog(ctx); err != nil {
			warn = fmt.Errorf("Consul agents unknown: %w", err)
			cat = nil
		}
	}
	var rows []Row
	for _, n := range nodes {
		r := Row{SwarmNode: mswarm.NewSwarmNode(n, info.Swarm.NodeID), Tasks: map[string]int{}, ConsulHealth: "unknown"}
		for _, t := range tasks {
			if t.NodeID == n.ID && t.Status.State == swarm.TaskStateRunning {
				r.Tasks[stackOf[t.ServiceID]]++
			}
		}
		if cat != nil {
			r.ConsulHealth = "none"
			if cn := agentOf(cat, n); cn != nil {
				r.ConsulAgent, r.ConsulHealth = cn.Name, serfStatus(*cn)
			}
			for _, in := range instancesOn(cat, tasks, n.ID) {
				if inMaintenance(in) {
					r.Maintenance++
				}
			}
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b Row) int {
		return cmp.Or(-cmp.Compare(b2i(a.Leader), b2i(b.Leader)), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.ID, b.ID))
	})
	return rows, warn, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// agentOf finds the Consul agent running on a swarm node: same name as
// the host, else same address.
func agentOf(cat *registry.Catalog, n swarm.Node) *registry.Node {
	for i, cn := range cat.Nodes {
		if cn.Name == n.Description.Hostname {
			return &cat.Nodes[i]
		}
	}
	for i, cn := range cat.Nodes {
		if n.Status.Addr != "" && cn.Address == n.Status.Addr {
			return &cat.Nodes[i]
		}
	}
	return nil
}

func serfStatus(n registry.Node) string {
	for _, c := range n.Checks {
		if c.CheckID == "serfHealth" {
			return c.Status
		}
	}
	return "unknown"
}

// taskIPs are the overlay addresses of the node's running tasks.
func taskIPs(tasks []swarm.Task, nodeID string) map[string]swarm.Task {
	ips := map[string]swarm.Task{}
	for _, t := range tasks {
		if t.NodeID != nodeID || t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		for _, na := range t.NetworksAttachments {
			for _, a := range na.Addresses {
				if ip, _, err := net.ParseCIDR(a); err == nil {
					ips[ip.String()] = t
				}
			}
		}
	}
	return ips
}

// instancesOn are the Consul instances whose address is the address of a
// task on the node: the instances that node's containers registered,
// whichever agent they registered with.
func instancesOn(cat *registry.Catalog, tasks []swarm.Task, nodeID string) []registry.ServiceInstance {
	ips := taskIPs(tasks, nodeID)
	var out []registry.ServiceInstance
	for _, in := range cat.Instances {
		if _, ok := ips[in.Address]; ok && in.Address != "" {
			out = append(out, in)
		}
	}
	return out
}

func inMaintenance(in registry.ServiceInstance) bool {
	for _, c := range in.Checks {
		if strings.HasPrefix(c.CheckID, "_service_maintenance:") {
			return true
		}
	}
	return false
}

// passing: no check of the instance (or of its node) is other than
// passing; what Consul's ?passing filter and go-micro's discovery keep.
func passing(cat *registry.Catalog, in registry.ServiceInstance) bool {
	for _, c := range in.Checks {
		if c.Status != registry.StatusPassing {
			return false
		}
	}
	if n := cat.Node(in.Node); n != nil {
		for _, c := range n.Checks {
			if c.Status != registry.StatusPassing {
				return false
			}
		}
	}
	return true
}

// NotFoundError: no node has that ID or hostname.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return "no swarm node named " + e.Name }

// Hint says what to do about it.
func (e *NotFoundError) Hint() string { return "list the nodes with: microctl node ls" }

// find resolves a node by ID, ID prefix or hostname.
func find(nodes []swarm.Node, name string) (swarm.Node, error) {
	var hits []swarm.Node
	for _, n := range nodes {
		if n.ID == name || n.Description.Hostname == name {
			return n, nil
		}
		if len(name) >= 4 && strings.HasPrefix(n.ID, name) {
			hits = append(hits, n)
		}
	}
	if len(hits) == 1 {
		return hits[0], nil
	}
	return swarm.Node{}, &NotFoundError{Name: name}
}
