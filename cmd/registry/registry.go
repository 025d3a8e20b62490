// Package registry implements `microctl registry`: what Consul holds about
// go-micro services, and removing instances that are gone.
package registry

import (
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/registry"
)

// NewCmdRegistry builds the `registry` group.
func NewCmdRegistry(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "List, inspect and clean up go-micro services registered in Consul",
		Long: `What Consul holds about go-micro services: services and their instances, the
metadata, endpoints and version go-micro encodes in tags, and each check.

Consul is found through CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the other
CONSUL_* variables, or the --consul-* flags.`,
		Example: `  microctl registry ls
  microctl registry get go.micro.srv.greeter
  microctl registry prune --critical-for 2m --dry-run`,
	}
	cmd.AddCommand(
		NewCmdLs(f, nil),
		NewCmdGet(f, nil),
		NewCmdDeregister(f, nil),
		NewCmdPrune(f, nil),
	)
	return cmd
}

// agentDialer returns a dialer for other nodes' agents that keeps the
// user's token and TLS settings and changes only the address.
func agentDialer(f *cmdutil.Factory) registry.AgentDialer { return f.AgentDialer() }

func warn(ios *cmdutil.IOStreams, msgs []string) {
	for _, m := range msgs {
		ios.Warnf("%s", m)
	}
}
