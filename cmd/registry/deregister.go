package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// DeregisterOptions are the inputs of `microctl registry deregister`.
type DeregisterOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Dial   registry.AgentDialer
	// StdinTTY reports whether a person can answer the confirmation.
	StdinTTY func() bool

	InstanceID      string
	Node            string
	Yes             bool
	CatalogFallback bool
	AgentPort       int
	Output          cmdutil.Format
}

// NewCmdDeregister builds `registry deregister`.
func NewCmdDeregister(f *cmdutil.Factory, runF func(context.Context, *DeregisterOptions) error) *cobra.Command {
	opts := &DeregisterOptions{IO: f.IOStreams, Consul: f.Consul, Dial: agentDialer(f),
		StdinTTY: f.IOStreams.IsStdinTTY}
	cmd := &cobra.Command{
		Use:   "deregister INSTANCE_ID",
		Short: "Remove one instance, through the Consul agent that owns it",
		Long: `Remove one service instance from Consul.

An instance registered the go-micro way lives in the local state of the
agent it registered with; the catalog holds a copy the agent keeps in sync.
Removing it from the catalog alone lasts until the agent's next
anti-entropy sync, which puts it back. So microctl deregisters through the
agent that owns it: the agent of the instance's node, at the node's address
on the HTTP port of the agent microctl talks to (--agent-port to change it).
On a real cluster that is another host.

When that agent does not answer, or does not own the instance (registered
through the catalog API), microctl says so and stops; --catalog-fallback
then removes it from the catalog, with a warning when the agent may still
be alive to restore it.

It asks before removing anything, reading the answer from stdin; without a
terminal on stdin it refuses unless --yes is given.`,
		Example: `  microctl registry deregister go.micro.srv.greeter-0b6c5f0e-8d8c-4f5e-9c55-1c1e2f1f6a7d
  microctl registry deregister ID --yes --catalog-fallback`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.InstanceID = args[0]
			if opts.AgentPort < 0 || opts.AgentPort > 65535 {
				return cmdutil.Usagef("--agent-port must be between 1 and 65535")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return deregisterRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.StringVar(&opts.Node, "node", "", "the instance's node, when the same ID is registered on several")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.CatalogFallback, "catalog-fallback", false, "deregister from the catalog when the owning agent cannot (anti-entropy may restore it)")
	fl.IntVar(&opts.AgentPort, "agent-port", 0, "HTTP port of other nodes' Consul agents (default: the port of the agent microctl talks to)")
	return cmd
}

// UnknownInstanceError names an instance ID the catalog does not have.
type UnknownInstanceError struct {
	ID, Suggestion string
}

func (e *UnknownInstanceError) Error() string {
	msg := "no instance with ID " + e.ID
	if e.Suggestion != "" {
		msg += "; did you mean " + e.Suggestion + "?"
	}
	return msg
}

// Hint says what to do about it.
func (e *UnknownInstanceError) Hint() string {
	return "microctl registry get SERVICE lists instance IDs"
}

func deregisterRun(ctx context.Context, opts *DeregisterOptions) error {
	if err := cmdutil.RequireConfirmable(opts.Yes, opts.StdinTTY(), "deregister"); err != nil {
		return err
	}
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	cat, err := c.Catalog(ctx)
	if err != nil {
		return err
	}
	var found []health.Instance
	var ids []string
	for _, in := range health.Build(cat, health.Options{}) {
		ids = append(ids, in.ID)
		if in.ID == opts.InstanceID && (opts.Node == "" || opts.Node == in.Node) {
			found = append(found, in)
		}
	}
	switch {
	case len(found) == 0 && cat.Filtered.Any() && len(cat.Instances) == 0:
		return registry.FilteredError(c.Addr, cat.Filtered)
	case len(found) == 0:
		return &UnknownInstanceError{ID: opts.InstanceID, Suggestion: health.Suggest(opts.InstanceID, ids)}
	case len(found) > 1:
		var nodes []string
		for _, in := range found {
			nodes = append(nodes, in.Node)
		}
		return cmdutil.Usagef("instance ID %s is registered on nodes %s: pass --node", opts.InstanceID, strings.Join(nodes, ", "))
	}
	return removeInstances(ctx, removeParams{IO: opts.IO, Client: c, Dial: opts.Dial, Yes: opts.Yes,
		CatalogFallback: opts.CatalogFallback, AgentPort: opts.AgentPort, Output: opts.Output}, found, nodeCritical(found))
}

func nodeCritical(ins []health.Instance) map[string]bool {
	out := map[string]bool{}
	for _, in := range ins {
		if in.AgentGone() {
			out[in.Raw.Key()] = true
		}
	}
	return out
}

type removeParams struct {
	IO              *cmdutil.IOStreams
	Client          *registry.Client
	Dial            registry.AgentDialer
	Yes             bool
	CatalogFallback bool
	AgentPort       int
	Output          cmdutil.Format
}

// Failure is an instance that could not be removed.
type Failure struct {
	Service  string `json:"service"`
	Instance string `json:"instance"`
	Node     string `json:"node"`
	Error    string `json:"error"`
	Hint     string `json:"hint,omitempty"`
}

// removeInstances lists targets, asks, removes each, and reports what was
// removed. Any failure makes the command fail (exit 1) after the others
// were tried.
func removeInstances(ctx context.Context, p removeParams, targets []health.Instance, nodeDown map[string]bool) error {
	out := p.IO.ErrOut
	fmt.Fprintf(out, "to deregister (%d):\n", len(targets))
	t := cmdutil.NewTable(out)
	for _, in := range targets {
		t.Row("  ", in.Service, in.ID, "node "+in.Node, in.Status)
	}
	_ = t.Flush()
	if !p.Yes && !p.IO.Confirm(fmt.Sprintf("Deregister %d instance(s)?", len(targets))) {
		return errors.New("nothing deregistered: not confirmed")
	}
	removed := []registry.Removal{}
	failed := []Failure{}
	var errs []error
	for _, in := range targets {
		r, err := p.Client.Deregister(ctx, in.Raw, registry.DeregisterOptions{AgentPort: p.AgentPort, Dial: p.Dial,
			CatalogFallback: p.CatalogFallback, NodeCritical: nodeDown[in.Raw.Key()]})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
			failed = append(failed, Failure{Service: in.Service, Instance: in.ID, Node: in.Node, Error: err.Error(), Hint: hintOf(err)})
			continue
		}
		if r.Warning != "" {
			p.IO.Warnf("%s", r.Warning)
		}
		removed = append(removed, r)
	}
	if p.Output.JSON() {
		if err := cmdutil.PrintJSON(p.IO.Out, struct {
			Removed []registry.Removal `json:"removed"`
			Failed  []Failure          `json:"failed"`
		}{removed, failed}); err != nil {
			return err
		}
	} else if len(removed) > 0 {
		t := cmdutil.NewTable(p.IO.Out, "SERVICE", "INSTANCE", "NODE", "VIA")
		for _, r := range removed {
			t.Row(r.Service, r.Instance, r.Node, r.Via)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	switch {
	case len(errs) == 1:
		return errs[0]
	case len(errs) > 1:
		return fmt.Errorf("%d of %d instance(s) not deregistered; first: %w", len(errs), len(targets), errs[0])
	}
	return nil
}

func hintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
