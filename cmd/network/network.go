// Package network implements `microctl network`: create, ls, inspect and rm
// for the swarm's overlay networks. The work is done in pkg/swarm.
package network

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// NewCmdNetwork is the `microctl network` group.
func NewCmdNetwork(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage the swarm's overlay networks",
		Long: `Create, list, inspect and remove the overlay networks that swarm services
(and, when attachable, standalone containers) share across nodes.

Every command talks to the Docker Engine named by DOCKER_HOST (or
--docker-host; DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for TLS). Creating and
removing need a swarm manager.`,
	}
	cmd.AddCommand(
		NewCmdCreate(f, nil),
		NewCmdList(f, nil),
		NewCmdInspect(f, nil),
		NewCmdRemove(f, nil),
	)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// describe is a network in a few words: overlay, 10.0.1.0/24, attachable.
func describe(n sw.OverlayNetwork) string {
	spec := sw.NetworkSpec{Name: n.Name, Driver: n.Driver, Attachable: n.Attachable, Encrypted: n.Encrypted, Internal: n.Internal}
	for _, s := range n.Subnets {
		spec.Pools = append(spec.Pools, sw.IPAMPool{Subnet: s.Subnet})
	}
	return spec.Describe()
}

// servicesCell shows up to three service names and how many more.
func servicesCell(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	if len(s) <= 3 {
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("%s,+%d", strings.Join(s[:3], ","), len(s)-3)
}
