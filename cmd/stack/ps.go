// Package stack implements the commands that look at and act on deployed
// stacks and their services: ps, rm, rollback and scale.
package stack

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/registry"
	stk "github.com/microctl/microctl/pkg/stack"
)

// PsOptions are the inputs of `microctl ps`.
type PsOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)
	Consul func() (*registry.Client, error)

	Stack  string
	Output cmdutil.Format
	// Mesh is tri-state: "" (default: mesh columns when Consul answers),
	// "true" (required: an unreachable Consul is an error), "false".
	Mesh string
}

// NewCmdPs builds `microctl ps`.
func NewCmdPs(f *cmdutil.Factory, runF func(context.Context, *PsOptions) error) *cobra.Command {
	opts := &PsOptions{IO: f.IOStreams, Docker: f.Docker, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "ps [STACK]",
		Short: "List a stack's services with their running and desired tasks",
		Long: `List the services of a stack (every service on the swarm when no stack is
given): name, image as written in the compose file, mode, tasks running out
of desired, published ports and the state of the last update.

Stacks deployed by docker stack deploy are listed too: both use the label
com.docker.stack.namespace.

With a stack named, and by default when Consul answers (--mesh requires it,
--mesh=false skips it), the mesh services' other half is shown too: every
running task with the Consul instance at its address (instance ID, check
status, how long the task has been up; Consul keeps no time for a check's
last transition, so how long an instance has passed is known only to a
watch such as deploy's gate). Tasks without an instance (silent tasks) and
instances without a running task (orphans) are listed as problems, and ps
then exits 3. A mesh service is one declared with the deploy label
microctl.consul.service, or whose tasks' addresses are registered as one
Consul service.

JSON fields: stack, name, id, image, mode, running, desired, completed (jobs),
ports, update_state, update_message, and for a mesh service mesh
{consul_service, declared, tasks [{service, consul_service, task, slot,
address, instance, status, up_seconds}], problems [{service, consul_service,
kind (silent-task, orphan-instance), task, instance, address, status,
detail}]}.

Exit codes: 0 ok, 1 error, 3 a mesh service has problems.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; Consul:
CONSUL_HTTP_ADDR and the other CONSUL_* variables (or the global flags).`,
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
	cmd.Flags().StringVar(&opts.Mesh, "mesh", "", "show each task's Consul instance (default: when a stack is named and Consul answers)")
	cmd.Flags().Lookup("mesh").NoOptDefVal = "true"
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
	problems, meshErr := 0, error(nil)
	wantMesh := opts.Mesh == "true" || opts.Mesh == "" && opts.Stack != ""
	if wantMesh && opts.Consul != nil {
		c, err := opts.Consul()
		if err == nil {
			mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			problems, err = stk.AddMesh(mctx, cli, c, rows)
			cancel()
		}
		switch {
		case err != nil && opts.Mesh == "true":
			return fmt.Errorf("mesh: %w", err)
		case err != nil:
			meshErr = err
			for i := range rows {
				rows[i].Mesh = nil
			}
		}
	}
	if meshErr != nil {
		opts.IO.Notef("Consul not consulted (%s): registrations not shown", meshErr)
	}
	if opts.Output.JSON() {
		if err := cmdutil.PrintJSON(opts.IO.Out, rows); err != nil {
			return err
		}
		return meshProblems(problems, opts.Stack)
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
	if err := t.Flush(); err != nil {
		return err
	}
	if err := renderMesh(opts.IO.Out, rows); err != nil {
		return err
	}
	return meshProblems(problems, opts.Stack)
}

// renderMesh prints the mesh services' tasks with their instances, then
// the problems.
func renderMesh(w io.Writer, rows []stk.ServiceRow) error {
	var any bool
	for _, r := range rows {
		any = any || r.Mesh != nil
	}
	if !any {
		return nil
	}
	fmt.Fprintln(w)
	t := cmdutil.NewTable(w, "SERVICE", "CONSUL", "TASK", "SLOT", "ADDRESS", "INSTANCE", "CHECK", "UP")
	var problems []string
	for _, r := range rows {
		if r.Mesh == nil {
			continue
		}
		for _, tr := range r.Mesh.Tasks {
			inst, check := tr.Instance, tr.Status
			if inst == "" {
				inst, check = "-", "-"
			}
			t.Row(r.Name, r.Mesh.Consul, shortID(tr.Task), fmt.Sprint(tr.Slot), tr.Address, inst, check, tr.Up.String())
		}
		for _, p := range r.Mesh.Problems {
			problems = append(problems, fmt.Sprintf("  %s  %s", p.Kind, p.Detail))
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range problems {
			fmt.Fprintln(w, p)
		}
	}
	return nil
}

func meshProblems(n int, stack string) error {
	if n == 0 {
		return nil
	}
	what := "the swarm's"
	if stack != "" {
		what = "stack " + stack + "'s"
	}
	return cmdutil.Unhealthy("%s mesh services have %d problem(s): tasks without an instance or instances without a task", what, n)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
