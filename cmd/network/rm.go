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

// RemoveOptions are the inputs of `microctl network rm`.
type RemoveOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Name string
}

// NewCmdRemove builds `microctl network rm`.
func NewCmdRemove(f *cmdutil.Factory, runF func(context.Context, *RemoveOptions) error) *cobra.Command {
	opts := &RemoveOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:     "rm NAME|ID",
		Aliases: []string{"remove"},
		Short:   "Remove an overlay network (refused while services use it)",
		Long: `Remove an overlay network. Refused, naming them, while services are attached;
refused for the ingress network and for networks that are not overlays.
Needs a manager.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl network rm backend`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRemove(cmd.Context(), opts)
		},
	}
	return cmd
}

func runRemove(ctx context.Context, opts *RemoveOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	if _, err := sw.RequireManager(ctx, cli); err != nil {
		return err
	}
	n, err := sw.RemoveOverlay(ctx, cli, opts.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(opts.IO.Out, "Network %s removed (ID %s).\n", n.Name, stringid.TruncateID(n.ID))
	return nil
}
