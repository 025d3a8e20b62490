package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// LeaveOptions are the inputs of `microctl swarm leave`.
type LeaveOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Force bool
}

// NewCmdLeave builds `microctl swarm leave`.
func NewCmdLeave(f *cmdutil.Factory, runF func(context.Context, *LeaveOptions) error) *cobra.Command {
	opts := &LeaveOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "leave",
		Short: "Make this engine leave its swarm (guarded for managers)",
		Long: `Make the Docker Engine leave its swarm.

A worker leaves (its entry stays on the managers as a down node until
docker node rm removes it). A manager leaves only with --force: the last
manager's refusal lists what leaving destroys (the swarm's services,
networks, configs and secrets, and the other nodes' membership); any other
manager is better demoted first (docker node demote) so the quorum stays
right. An engine in no swarm has nothing to leave and exits 0.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl swarm leave
  microctl swarm leave --force   # the last manager: destroys the swarm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLeave(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "leave even as a manager, even the last one (destroys the swarm)")
	return cmd
}

func runLeave(ctx context.Context, opts *LeaveOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	res, err := sw.Leave(ctx, cli, opts.Force)
	if err != nil {
		return err
	}
	p := res.Plan
	switch {
	case !res.Left:
		fmt.Fprintln(opts.IO.Out, "This node is not in a swarm; nothing to leave.")
	case p.LastManager():
		fmt.Fprintf(opts.IO.Out, "This node left the swarm. It was its last manager: the swarm is gone, with its %d services, %d networks, %d configs and %d secrets.\n",
			len(p.Services), len(p.Networks), p.Configs, p.Secrets)
	case p.State == "manager":
		fmt.Fprintf(opts.IO.Out, "This node left the swarm; %d managers remain (remove its entry on one of them: docker node rm %s).\n", p.Managers-1, stringid.TruncateID(p.NodeID))
	default:
		fmt.Fprintf(opts.IO.Out, "This node left the swarm (a manager still lists it as down until: docker node rm %s).\n", stringid.TruncateID(p.NodeID))
	}
	return nil
}
