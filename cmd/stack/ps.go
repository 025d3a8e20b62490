// Package stack implements the commands that look at and act on deployed
// stacks and their services: ps, rm, rollback and scale.
package stack

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	stk "github.com/microctl/microctl/pkg/stack"
)

// PsOptions are the inputs of `microctl ps`.
type PsOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Stack  string
	Output cmdutil.Format
}

// NewCmdPs builds `microctl ps`.
func NewCmdPs(f *cmdutil.Factory, runF func(context.Context, *PsOptions) error) *cobra.Command {
	opts := &PsOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "ps [STACK]",
		Short: "List a stack's services with their running and desired tasks",
		Long: `List the services of a stack (every service on the swarm when no stack is
given): name, image as written in the compose file, mode, tasks running out
of desired, published ports and the state of the last update.

Stacks deployed by docker stack deploy are listed too: both use the label
com.docker.stack.namespace.

JSON fields: stack, name, id, image, mode, running, desired, completed (jobs),
ports, update_state, update_message.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl ps demo
  microctl ps -o json | jq '.[] | select(.running < .desired)'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := cmdutil.CheckStackName(args[0]); err != nil {
					return err
				}
				opts.Stack = args[0]
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPs(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runPs(ctx context.Context, opts *PsOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	rows, err := stk.ListServices(ctx, cli, opts.Stack)
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, rows)
	}
	headers := []string{"NAME", "IMAGE", "MODE", "TASKS", "PORTS", "UPDATE"}
	if opts.Stack == "" {
		headers = append([]string{"STACK"}, headers...)
	}
	t := cmdutil.NewTable(opts.IO.Out, headers...)
	for _, r := range rows {
		tasks := fmt.Sprintf("%d/%d", r.Running, r.Desired)
		if r.Mode == "replicated-job" || r.Mode == "global-job" {
			tasks = fmt.Sprintf("%d/%d done", r.Completed, r.Desired)
		}
		update := r.UpdateState
		if r.UpdateMessage != "" && strings.HasSuffix(r.UpdateState, "paused") {
			update += ": " + r.UpdateMessage // why it stopped
		}
		cells := []string{r.Name, r.Image, r.Mode, tasks, strings.Join(r.Ports, ", "), update}
		if opts.Stack == "" {
			stack := r.Stack
			if stack == "" {
				stack = "-"
			}
			cells = append([]string{stack}, cells...)
		}
		t.Row(cells...)
	}
	return t.Flush()
}
