package swarm

import (
	"context"
	"errors"
	"net/netip"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// SubnetsAPI is what Subnets needs from the Docker client.
type SubnetsAPI interface {
	InfoAPI
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
}

// Subnet is one network's address range.
type Subnet struct {
	Name   string
	Prefix netip.Prefix
}

// AddressSpace is where a swarm's tasks and nodes have their addresses.
type AddressSpace struct {
	Overlays  []Subnet     // the swarm's overlay networks, ingress excluded
	Ingress   []Subnet     // the routing mesh's network
	Bridges   []Subnet     // this host's bridge networks (bridge, docker_gwbridge)
	NodeAddrs []netip.Addr // the nodes' own addresses (host-mode ports)
}

// ErrNoOverlay is returned by Subnets when the swarm has no overlay network
// but ingress: nothing a service's address could be judged against.
var ErrNoOverlay = errors.New("the swarm has no overlay network besides ingress")

// Subnets learns the swarm's overlay networks, its ingress network, this
// host's bridges and the nodes' addresses. Only a manager lists every
// overlay network (a worker sees only those with local tasks), so anything
// else is a NotManagerError rather than a partial answer.
func Subnets(ctx context.Context, cli SubnetsAPI) (*AddressSpace, error) {
	if _, err := RequireManager(ctx, cli); err != nil {
		return nil, err
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, ClassifyEngine(cli.DaemonHost(), err)
	}
	out := &AddressSpace{}
	for _, n := range nets {
		for _, cfg := range n.IPAM.Config {
			p, err := netip.ParsePrefix(cfg.Subnet)
			if err != nil {
				continue
			}
			s := Subnet{Name: n.Name, Prefix: p.Masked()}
			switch {
			case n.Driver == "overlay" && n.Ingress:
				out.Ingress = append(out.Ingress, s)
			case n.Driver == "overlay":
				out.Overlays = append(out.Overlays, s)
			case n.Driver == "bridge":
				out.Bridges = append(out.Bridges, s)
			}
		}
	}
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, ClassifyEngine(cli.DaemonHost(), err)
	}
	for _, n := range nodes {
		if a, err := netip.ParseAddr(n.Status.Addr); err == nil {
			out.NodeAddrs = append(out.NodeAddrs, a.Unmap())
		}
	}
	if len(out.Overlays) == 0 {
		return nil, ErrNoOverlay
	}
	return out, nil
}
