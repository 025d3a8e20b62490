package stack

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	stk "github.com/microctl/microctl/pkg/stack"
)

// RmOptions are the inputs of `microctl rm`.
type RmOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Stack  string
	Output cmdutil.Format
}

// NewCmdRm builds `microctl rm`.
func NewCmdRm(f *cmdutil.Factory, runF func(context.Context, *RmOptions) error) *cobra.Command {
	opts := &RmOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "rm STACK",
		Short: "Remove a stack and wait until it is gone",
		Long: `Remove a stack: its services, then (once their tasks have stopped) its
secrets, configs and networks. Unlike docker stack rm it returns only when
all of it is gone, so a deploy of the same stack can follow at once.

Works on stacks deployed by docker stack deploy too.

JSON fields: stack, services, networks, configs, secrets (names removed).

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl rm demo`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.CheckStackName(args[0]); err != nil {
				return err
			}
			opts.Stack = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRm(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runRm(ctx context.Context, opts *RmOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	prog := newProgressTo(opts.IO.ErrOut, false, 0) // events only: nothing to redraw
	res, err := stk.RemoveStack(ctx, cli, opts.Stack, prog)
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, res)
	}
	fmt.Fprintf(opts.IO.Out, "removed stack %s: %d services, %d networks, %d configs, %d secrets\n",
		res.Stack, len(res.Services), len(res.Networks), len(res.Configs), len(res.Secrets))
	return nil
}
