package health

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/microctl/microctl/pkg/health"
)

// dockerNetworks is the part of the Docker client the lint needs.
type dockerNetworks interface {
	Info(ctx context.Context) (system.Info, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
}

// discoverNetworks learns the swarm's overlay networks, its ingress
// network, this host's bridges and the nodes' addresses. Only a manager
// lists every overlay network (a worker sees only those with local tasks),
// so anything else is reported as unknown rather than guessed at.
func discoverNetworks(ctx context.Context, cli dockerNetworks) (*health.Networks, error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return nil, err
	}
	if !info.Swarm.ControlAvailable {
		state := string(info.Swarm.LocalNodeState)
		if state == "" {
			state = "inactive"
		}
		return nil, fmt.Errorf("the Docker Engine is not a swarm manager (swarm state %s), so it cannot list every overlay network", state)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := &health.Networks{}
	for _, n := range nets {
		for _, cfg := range n.IPAM.Config {
			p, err := netip.ParsePrefix(cfg.Subnet)
			if err != nil {
				continue
			}
			s := health.Subnet{Name: n.Name, Prefix: p.Masked()}
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
		return nil, err
	}
	for _, n := range nodes {
		if a, err := netip.ParseAddr(n.Status.Addr); err == nil {
			out.NodeAddrs = append(out.NodeAddrs, a.Unmap())
		}
	}
	if len(out.Overlays) == 0 {
		return nil, fmt.Errorf("the swarm has no overlay network besides ingress")
	}
	return out, nil
}

// parseSubnets reads --overlay-subnet values: CIDR, or NAME=CIDR.
func parseSubnets(values []string) ([]health.Subnet, error) {
	var out []health.Subnet
	for _, v := range values {
		name, cidr, ok := strings.Cut(v, "=")
		if !ok {
			name, cidr = "overlay", v
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if err != nil {
			return nil, fmt.Errorf("--overlay-subnet %q: want a CIDR such as 10.0.1.0/24, optionally NAME=CIDR", v)
		}
		out = append(out, health.Subnet{Name: name, Prefix: p.Masked()})
	}
	return out, nil
}
