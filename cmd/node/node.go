// Package node implements `microctl node`: the swarm's nodes with their
// tasks and Consul agents, and a drain that takes Consul into account.
package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/node"
	"github.com/microctl/microctl/pkg/registry"
)

// Options are the inputs of the node commands.
type Options struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)
	Consul func() (*registry.Client, error)
	f      *cmdutil.Factory

	Node      string
	Timeout   time.Duration
	Rebalance bool
	Output    cmdutil.Format
}

// NewCmdNode builds `node` and its subcommands.
func NewCmdNode(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "List nodes; drain and re-activate a node without dropping requests",
		Long: `List the swarm's nodes with their tasks and Consul agents, and take a node out
of service (drain) or back in (activate) with Swarm and Consul in step.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH;
CONSUL_HTTP_ADDR and the other CONSUL_* variables.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdLs(f, nil), NewCmdDrain(f, nil), NewCmdActivate(f, nil))
	return cmd
}

func newOptions(f *cmdutil.Factory) *Options {
	return &Options{IO: f.IOStreams, Docker: f.Docker, Consul: f.Consul, f: f}
}

// consul returns the ConsulAPI, or nil with the error when Consul is not
// configured correctly.
func (o *Options) consul() (node.Consul, error) {
	c, err := o.Consul()
	if err != nil {
		return node.Consul{}, err
	}
	return node.Consul{C: c, Config: o.f.ConsulFlags.Config()}, nil
}

// NewCmdLs builds `node ls`.
func NewCmdLs(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the swarm's nodes with their tasks per stack and their Consul agent",
		Long: `List every node: hostname, role, availability (active, pause, drain), state,
running tasks per stack, the Consul agent on the node (matched by node name,
then by address) with its serfHealth status, and how many of the node's
instances are in Consul maintenance.

When Consul cannot be read the agent columns say unknown and a warning says
why; the Swarm columns are still shown.

JSON fields: id, hostname, role, availability, state, addr, leader, self,
tasks (stack -> running tasks; "" for services outside stacks),
consul_agent, consul_health, instances_in_maintenance, and the fields of
'swarm status -o json' nodes.`,
		Example: `  microctl node ls
  microctl node ls -o json | jq '.[] | select(.consul_health != "passing")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLs(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runLs(ctx context.Context, opts *Options) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	var c node.ConsulAPI
	cc, cerr := opts.consul()
	if cerr == nil {
		c = cc
	}
	rows, warn, err := node.List(ctx, cli, c)
	if err != nil {
		return err
	}
	if cerr != nil {
		warn = cerr
	}
	if warn != nil {
		opts.IO.Warnf("%v", warn)
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, rows)
	}
	t := cmdutil.NewTable(opts.IO.Out, "HOSTNAME", "ID", "ROLE", "AVAILABILITY", "STATE", "TASKS", "CONSUL AGENT", "MAINT")
	for _, r := range rows {
		role := r.Role
		if r.Leader {
			role += " (leader)"
		}
		host := r.Hostname
		if r.Self {
			host += " *"
		}
		agent := "-"
		if r.ConsulAgent != "" {
			agent = r.ConsulAgent + " " + r.ConsulHealth
		} else if r.ConsulHealth == "unknown" {
			agent = "unknown"
		}
		t.Row(host, short(r.ID), role, r.Availability, r.State, tasks(r.Tasks), agent, fmt.Sprint(r.Maintenance))
	}
	return t.Flush()
}

func tasks(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		name := k
		if name == "" {
			name = "(no stack)"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, m[k]))
	}
	return strings.Join(parts, " ")
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// NewCmdDrain builds `node drain`.
func NewCmdDrain(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Take a node out of service: Consul maintenance first, then the Swarm drain",
		Long: `Drain NODE (hostname or ID) without dropping requests:

  1. consul-maintenance   every instance the node's tasks registered goes into
                          Consul maintenance, through the agent it registered
                          with, so gateways and go-micro clients stop picking it
  2. out-of-passing-sets  wait until none of them is passing any more: nothing
                          routes to the node
  3. swarm-drain          set the node's availability to drain
  4. tasks-moved          wait until no task runs on the node, every affected
                          service runs its replicas elsewhere, and their
                          instances pass in Consul

'docker node update --availability drain' alone stops the tasks while Consul
still lists their instances as passing.

Refused, with nothing changed, when no other node is active and ready (on a
one-node swarm, always). --timeout bounds the whole drain; when it runs out,
or on Ctrl-C, what was done is undone (availability active, maintenance
off) and the report says so. Exit codes: 0 drained, 1 refused or failed,
3 timed out (undone), 130 interrupted (undone).`,
		Example: `  microctl node drain worker-2
  microctl node drain worker-2 --timeout 10m -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Node = args[0]
			if opts.Timeout <= 0 {
				return cmdutil.Usagef("--timeout must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runDrain(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up (and undo) after this long")
	return cmd
}

func (o *Options) progress() func(node.Step) {
	return func(s node.Step) {
		o.IO.Infof("%-22s %s (%.1fs)", s.Name, s.Detail, s.TookS)
	}
}

func runDrain(ctx context.Context, opts *Options) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	c, err := opts.consul()
	if err != nil {
		return err
	}
	res, err := node.Drain(ctx, cli, c, opts.Node, node.DrainOptions{Timeout: opts.Timeout, Progress: opts.progress()})
	return report(opts, res, err, "drained")
}

func report(opts *Options, res *node.Result, err error, verb string) error {
	var re *node.RefusedError
	if res == nil || errors.As(err, &re) {
		return err
	}
	if opts.Output.JSON() {
		if jerr := cmdutil.PrintJSON(opts.IO.Out, res); jerr != nil {
			return jerr
		}
	} else if err == nil {
		fmt.Fprintf(opts.IO.Out, "%s %s: %d instance(s) in maintenance, services %s\n", res.Node, verb,
			len(res.Instances), orNone(res.Services))
	} else if res.Undone {
		fmt.Fprintf(opts.IO.Out, "%s not %s; undone: availability and maintenance restored\n", res.Node, verb)
	}
	for _, e := range res.UndoErrors {
		opts.IO.Warnf("could not undo: %s", e)
	}
	var te *node.TimeoutError
	if errors.As(err, &te) {
		return cmdutil.Unhealthy("%v", err)
	}
	return err
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// NewCmdActivate builds `node activate`.
func NewCmdActivate(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := newOptions(f)
	cmd := &cobra.Command{
		Use:   "activate NODE",
		Short: "Bring a drained node back: availability active, Consul maintenance off",
		Long: `Reverse a drain: set NODE's availability to active, then turn Consul
maintenance off for the node's instances that are in it.

Swarm does not move running tasks back by itself. --rebalance force-updates
every replicated service of two or more replicas, so Swarm places their
tasks again across the nodes (each service's update policy applies: with
the default one task at a time, a greeter keeps serving).`,
		Example: `  microctl node activate worker-2
  microctl node activate worker-2 --rebalance`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Node = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runActivate(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.Rebalance, "rebalance", false, "force-update replicated services so their tasks spread over the nodes again")
	return cmd
}

func runActivate(ctx context.Context, opts *Options) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	c, err := opts.consul()
	if err != nil {
		return err
	}
	res, err := node.Activate(ctx, cli, c, opts.Node, node.DrainOptions{Rebalance: opts.Rebalance, Progress: opts.progress()})
	return report(opts, res, err, "activated")
}
