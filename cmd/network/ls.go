package network

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// ListOptions are the inputs of `microctl network ls`.
type ListOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Output cmdutil.Format
}

// NewCmdList builds `microctl network ls`.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the overlay networks",
		Long: `List the overlay networks: name, ID, subnets, whether attachable and
encrypted, and the services attached. On a worker only the networks with a
task on that node are known, and no services are shown.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl network ls
  microctl network ls -o json | jq -r '.[] | select(.encrypted | not) | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	nets, err := sw.ListOverlays(ctx, cli)
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, nets)
	}
	t := cmdutil.NewTable(opts.IO.Out, "NAME", "ID", "SUBNETS", "ATTACHABLE", "ENCRYPTED", "INTERNAL", "SERVICES")
	for _, n := range nets {
		name := n.Name
		if n.Ingress && n.Name != "ingress" {
			name += " (ingress)"
		}
		t.Row(name, stringid.TruncateID(n.ID), dash(n.SubnetList()), yesNo(n.Attachable), yesNo(n.Encrypted), yesNo(n.Internal),
			fmt.Sprintf("%d %s", len(n.Services), servicesCell(n.Services)))
	}
	return t.Flush()
}
