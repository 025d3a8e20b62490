package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// TokenOptions are the inputs of `microctl swarm token`.
type TokenOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Role   string
	Rotate bool
	Quiet  bool
	Output cmdutil.Format
}

// NewCmdToken builds `microctl swarm token`.
func NewCmdToken(f *cmdutil.Factory, runF func(context.Context, *TokenOptions) error) *cobra.Command {
	opts := &TokenOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "token worker|manager",
		Short: "Print (or rotate) the token that joins a worker or a manager",
		Long: `Print the join command for a worker or a manager, or with -q the token alone.
--rotate replaces the token first: the old one stops working for new joins;
nodes that already joined are not affected. Needs a manager.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl swarm token worker
  microctl swarm token manager --rotate
  TOKEN=$(microctl swarm token worker -q)`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"worker", "manager"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := sw.ParseRole(args[0]); err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			opts.Role = args[0]
			if opts.Quiet && opts.Output.JSON() {
				return cmdutil.Usagef("-q and -o json exclude each other")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runToken(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Rotate, "rotate", false, "replace the token with a new one first")
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the token")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runToken(ctx context.Context, opts *TokenOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	role, _ := sw.ParseRole(opts.Role)
	res, err := sw.JoinToken(ctx, cli, role, opts.Rotate)
	if err != nil {
		return err
	}
	if res.Rotated {
		fmt.Fprintf(opts.IO.ErrOut, "Rotated the %s join token; the old one no longer joins nodes.\n", res.Role)
	}
	switch {
	case opts.Output.JSON():
		return cmdutil.PrintJSON(opts.IO.Out, res)
	case opts.Quiet:
		fmt.Fprintln(opts.IO.Out, res.Token)
		return nil
	}
	fmt.Fprintf(opts.IO.Out, "To add a %s to this swarm, run on it:\n    %s\n", res.Role, res.Command)
	return nil
}
