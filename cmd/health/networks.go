package health

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/swarm"
)

// networksOf is the lint's view of the swarm's address space
// (swarm.Subnets learns it, manager check included).
func networksOf(a *swarm.AddressSpace) *health.Networks {
	subnets := func(in []swarm.Subnet) []health.Subnet {
		var out []health.Subnet
		for _, s := range in {
			out = append(out, health.Subnet{Name: s.Name, Prefix: s.Prefix})
		}
		return out
	}
	return &health.Networks{Overlays: subnets(a.Overlays), Ingress: subnets(a.Ingress),
		Bridges: subnets(a.Bridges), NodeAddrs: a.NodeAddrs}
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
