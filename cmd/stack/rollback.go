package stack

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	stk "github.com/microctl/microctl/pkg/stack"
)

// RollbackOptions are the inputs of `microctl rollback`.
type RollbackOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Service string
	Detach  bool
	Timeout time.Duration
	Output  cmdutil.Format
}

// NewCmdRollback builds `microctl rollback`.
func NewCmdRollback(f *cmdutil.Factory, runF func(context.Context, *RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "rollback SERVICE",
		Short: "Roll a service back to its previous spec and wait for it",
		Long: `Roll one service back to the spec it had before its last update, with Swarm's
own rollback (its rollback_config applies), and wait until it has converged.
SERVICE is the full name (STACK_SERVICE) or the ID.

JSON fields: service, phase, running, desired, update_state, message.

Exit code 3 when the rollback does not converge within --timeout.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl rollback demo_greeter`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if opts.Timeout <= 0 {
				return cmdutil.Usagef("--timeout must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRollback(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Detach, "detach", "d", false, "return once the rollback is started")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up waiting after this long (exit 3)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runRollback(ctx context.Context, opts *RollbackOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	prog := newProgress(opts.IO)
	st, err := stk.RollbackService(ctx, cli, opts.Service, stk.WaitOptions{Detach: opts.Detach, Timeout: opts.Timeout, Reporter: prog})
	prog.Done()
	if err != nil {
		return err
	}
	return renderStates(opts.IO, opts.Output, []stk.State{st}, opts.Detach, "rollback")
}

// renderStates prints the final state of waited-for services and returns
// an UnhealthyError (exit 3) when one did not converge.
func renderStates(io *cmdutil.IOStreams, format cmdutil.Format, states []stk.State, detached bool, what string) error {
	if format.JSON() {
		if err := cmdutil.PrintJSON(io.Out, states); err != nil {
			return err
		}
	} else {
		t := cmdutil.NewTable(io.Out, "SERVICE", "STATE", "TASKS", "MESSAGE")
		for _, s := range states {
			t.Row(s.Service, string(s.Phase), fmt.Sprintf("%d/%d", s.Running, s.Desired), s.Message)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if detached {
		return nil
	}
	if f := stk.Failures(states); len(f) > 0 {
		return cmdutil.Unhealthy("%s did not converge: %s", what, f[0])
	}
	for _, s := range states {
		if !s.Phase.OK() && s.Phase != stk.PhaseRolledBack {
			return cmdutil.Unhealthy("%s did not converge: %s is %s", what, s.Service, s.Phase)
		}
	}
	return nil
}
