package stack

import (
	"context"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	stk "github.com/microctl/microctl/pkg/stack"
)

// ScaleOptions are the inputs of `microctl scale`.
type ScaleOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Replicas map[string]uint64
	Detach   bool
	Timeout  time.Duration
	Output   cmdutil.Format
}

// NewCmdScale builds `microctl scale`.
func NewCmdScale(f *cmdutil.Factory, runF func(context.Context, *ScaleOptions) error) *cobra.Command {
	opts := &ScaleOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS...",
		Short: "Set the number of replicas of services and wait for them",
		Long: `Set the replica count of one or more replicated services (full name
STACK_SERVICE or ID) and wait until that many tasks run, all services at once.

The next microctl deploy of the stack sets the replicas back to what the
compose file says (its plan shows "replicas N -> M").

JSON fields: service, phase, running, desired, update_state, message.

Exit code 3 when a service does not reach its count within --timeout.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl scale demo_greeter=5
  microctl scale demo_greeter=2 demo_gateway=1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The same service twice is a mistake to point out, not a
			// last-one-wins to apply silently.
			seen := map[string]bool{}
			for _, a := range args {
				name, _, _ := strings.Cut(a, "=")
				if seen[name] {
					return cmdutil.Usagef("%s is given more than once", name)
				}
				seen[name] = true
			}
			r, err := stk.ParseScale(args)
			if err != nil {
				return cmdutil.Usagef("%v", err)
			}
			opts.Replicas = r
			if opts.Timeout <= 0 {
				return cmdutil.Usagef("--timeout must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runScale(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Detach, "detach", "d", false, "return once the new counts are set")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up waiting after this long (exit 3)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runScale(ctx context.Context, opts *ScaleOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	prog := newProgress(opts.IO)
	states, err := stk.Scale(ctx, cli, opts.Replicas, stk.WaitOptions{Detach: opts.Detach, Timeout: opts.Timeout, Reporter: prog})
	prog.Done()
	if err != nil {
		return err
	}
	return renderStates(opts.IO, opts.Output, states, opts.Detach, "scale")
}
