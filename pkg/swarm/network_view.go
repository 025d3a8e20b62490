package swarm

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// OverlayNetwork is an overlay network as microctl shows it. The JSON
// field names are part of `-o json` and stay stable.
type OverlayNetwork struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Driver     string            `json:"driver"`
	Scope      string            `json:"scope"`
	Subnets    []IPAMPool        `json:"subnets"`
	Attachable bool              `json:"attachable"`
	Encrypted  bool              `json:"encrypted"`
	Internal   bool              `json:"internal"`
	Ingress    bool              `json:"ingress"`
	Labels     map[string]string `json:"labels"`
	CreatedAt  time.Time         `json:"created_at"`
	// Services are the names of the swarm services attached, sorted.
	Services []string `json:"services"`
	// Peers are the nodes this engine knows to share the network (only
	// from inspect, and only on a node with a task on it).
	Peers []NetworkPeer `json:"peers,omitempty"`
}

// NetworkPeer is a node taking part in an overlay network.
type NetworkPeer struct {
	Name string `json:"name"`
	IP   string `json:"ip"`
}

// NewOverlayNetwork converts the engine's view; services are filled in by
// the caller.
func NewOverlayNetwork(n network.Inspect) OverlayNetwork {
	o := OverlayNetwork{
		Name: n.Name, ID: n.ID, Driver: n.Driver, Scope: n.Scope,
		Subnets:    []IPAMPool{},
		Attachable: n.Attachable, Encrypted: IsEncrypted(n), Internal: n.Internal, Ingress: n.Ingress,
		Labels:    n.Labels,
		CreatedAt: n.Created,
		Services:  []string{},
	}
	if o.Labels == nil {
		o.Labels = map[string]string{}
	}
	for _, c := range n.IPAM.Config {
		o.Subnets = append(o.Subnets, IPAMPool{Subnet: c.Subnet, Gateway: c.Gateway, IPRange: c.IPRange})
	}
	for _, p := range n.Peers {
		o.Peers = append(o.Peers, NetworkPeer{Name: p.Name, IP: p.IP})
	}
	return o
}

// SubnetList is the subnets joined by commas, for tables.
func (o OverlayNetwork) SubnetList() string {
	s := make([]string, len(o.Subnets))
	for i, p := range o.Subnets {
		s[i] = p.Subnet
	}
	return strings.Join(s, ",")
}

// NetworkReadAPI is what listing and inspecting networks needs.
type NetworkReadAPI interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	DaemonHost() string
}

// servicesByNetwork maps network IDs and names to the names of the services
// attached to them. A service names its networks by ID once created, but a
// spec may still carry the name, so both are keys.
func servicesByNetwork(services []swarm.Service) map[string][]string {
	m := map[string][]string{}
	for _, s := range services {
		seen := map[string]bool{}
		addOnce := func(target string) {
			if target != "" && !seen[target] {
				seen[target] = true
				m[target] = append(m[target], s.Spec.Name)
			}
		}
		for _, n := range s.Spec.TaskTemplate.Networks {
			addOnce(n.Target)
		}
		for _, n := range s.Spec.Networks { //nolint:staticcheck // older clients set the deprecated field
			addOnce(n.Target)
		}
		for _, v := range s.Endpoint.VirtualIPs {
			addOnce(v.NetworkID)
		}
	}
	return m
}

func attachedServices(by map[string][]string, n network.Inspect) []string {
	set := map[string]bool{}
	for _, key := range []string{n.ID, n.Name} {
		for _, s := range by[key] {
			set[s] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// ListOverlays returns the overlay networks the engine knows, sorted by
// name, each with the services attached. On a worker only the networks with
// a local task are known to the engine; services are then left empty.
func ListOverlays(ctx context.Context, cli NetworkReadAPI) ([]OverlayNetwork, error) {
	list, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", OverlayDriver))})
	if err != nil {
		return nil, ClassifyEngine(cli.DaemonHost(), err)
	}
	by, err := serviceIndex(ctx, cli)
	if err != nil {
		return nil, err
	}
	out := make([]OverlayNetwork, 0, len(list))
	for _, n := range list {
		if n.Driver != OverlayDriver {
			continue
		}
		o := NewOverlayNetwork(n)
		o.Peers = nil // a list never carries peers; keep ls output uniform
		o.Services = attachedServices(by, n)
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// serviceIndex lists services when the engine can (a manager); a worker
// answers 503 "not a swarm manager", and then no service is attached as far
// as this engine can tell.
func serviceIndex(ctx context.Context, cli NetworkReadAPI) (map[string][]string, error) {
	services, err := cli.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		if cerrdefs.IsUnavailable(err) && !isDialError(err) {
			return map[string][]string{}, nil
		}
		return nil, ClassifyEngine(cli.DaemonHost(), err)
	}
	return servicesByNetwork(services), nil
}

// NetworkNotFoundError: no network with that name or ID.
type NetworkNotFoundError struct{ Name string }

func (e *NetworkNotFoundError) Error() string { return fmt.Sprintf("no network named %s", e.Name) }

// Hint says what to do about it.
func (e *NetworkNotFoundError) Hint() string { return "microctl network ls lists the overlay networks" }

// findNetwork resolves a name (exactly) or an ID (or unique ID prefix).
func findNetwork(ctx context.Context, cli netReader, ref string, verbose bool) (network.Inspect, error) {
	list, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", ref))})
	if err != nil {
		return network.Inspect{}, ClassifyEngine(cli.DaemonHost(), err)
	}
	var id string
	n := 0
	for _, x := range list {
		if x.Name == ref {
			id = x.ID
			n++
		}
	}
	if n > 1 {
		return network.Inspect{}, fmt.Errorf("%d networks are named %s; use the ID", n, ref)
	}
	if id == "" {
		id = ref // maybe an ID
	}
	got, err := inspectAllocated(ctx, cli, id)
	if err == nil && verbose {
		// Peers come only with a verbose inspect; it is decoration, so a
		// failure keeps the plain view.
		if v, verr := cli.NetworkInspect(ctx, id, network.InspectOptions{Verbose: true}); verr == nil && v.Driver != "" {
			got = v
		}
	}
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return network.Inspect{}, &NetworkNotFoundError{Name: ref}
		}
		return network.Inspect{}, ClassifyEngine(cli.DaemonHost(), err)
	}
	return got, nil
}

// netReader is the list-and-inspect part of the client.
type netReader interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	DaemonHost() string
}

// InspectOverlay returns one network by name or ID, with the services
// attached and, from a verbose inspect, the peers this engine sees.
func InspectOverlay(ctx context.Context, cli NetworkReadAPI, ref string) (OverlayNetwork, error) {
	n, err := findNetwork(ctx, cli, ref, true)
	if err != nil {
		return OverlayNetwork{}, err
	}
	by, err := serviceIndex(ctx, cli)
	if err != nil {
		return OverlayNetwork{}, err
	}
	o := NewOverlayNetwork(n)
	o.Services = attachedServices(by, n)
	return o, nil
}

// NetworkInUseError: the network cannot be removed while services use it.
type NetworkInUseError struct {
	Name     string
	Services []string
}

func (e *NetworkInUseError) Error() string {
	noun := "services"
	if len(e.Services) == 1 {
		noun = "service"
	}
	return fmt.Sprintf("network %s is in use by %d %s: %s", e.Name, len(e.Services), noun, strings.Join(e.Services, ", "))
}

// Hint says what to do about it.
func (e *NetworkInUseError) Hint() string {
	return "remove or update those services first, e.g. docker service rm NAME"
}

// NotOverlayError: microctl manages overlay networks only.
type NotOverlayError struct {
	Name, Driver string
	Ingress      bool
}

func (e *NotOverlayError) Error() string {
	if e.Ingress {
		return fmt.Sprintf("network %s is the swarm's ingress network; microctl does not remove it", e.Name)
	}
	return fmt.Sprintf("network %s is a %s network, not a swarm overlay; microctl manages overlay networks only", e.Name, e.Driver)
}

// Hint says what to do about it.
func (e *NotOverlayError) Hint() string { return "use docker network rm for it" }

// NetworkRemoveAPI is what removing a network needs.
type NetworkRemoveAPI interface {
	NetworkReadAPI
	NetworkRemove(ctx context.Context, networkID string) error
}

// RemoveOverlay removes an overlay network by name or ID, refusing while
// services use it (naming them), and refusing non-overlay networks and the
// ingress network. It returns what was removed.
func RemoveOverlay(ctx context.Context, cli NetworkRemoveAPI, ref string) (OverlayNetwork, error) {
	n, err := findNetwork(ctx, cli, ref, false)
	if err != nil {
		return OverlayNetwork{}, err
	}
	if n.Driver != OverlayDriver || n.Ingress {
		return OverlayNetwork{}, &NotOverlayError{Name: n.Name, Driver: n.Driver, Ingress: n.Ingress}
	}
	by, err := serviceIndex(ctx, cli)
	if err != nil {
		return OverlayNetwork{}, err
	}
	o := NewOverlayNetwork(n)
	if users := attachedServices(by, n); len(users) > 0 {
		return o, &NetworkInUseError{Name: n.Name, Services: users}
	}
	if err := cli.NetworkRemove(ctx, n.ID); err != nil {
		if cerrdefs.IsNotFound(err) {
			return o, nil // gone already: what the caller wanted
		}
		if strings.Contains(err.Error(), "active endpoints") {
			return o, fmt.Errorf("network %s has containers attached (not services): %w", n.Name, err)
		}
		return o, fmt.Errorf("remove network %s: %w", n.Name, ClassifyEngine(cli.DaemonHost(), err))
	}
	return o, nil
}
