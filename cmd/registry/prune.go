package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// PruneOptions are the inputs of `microctl registry prune`.
type PruneOptions struct {
	IO       *cmdutil.IOStreams
	Consul   func() (*registry.Client, error)
	Dial     registry.AgentDialer
	StdinTTY func() bool

	CriticalFor     time.Duration
	Services        []string
	DryRun          bool
	Yes             bool
	CatalogFallback bool
	AgentPort       int
	Output          cmdutil.Format
}

// NewCmdPrune builds `registry prune`.
func NewCmdPrune(f *cmdutil.Factory, runF func(context.Context, *PruneOptions) error) *cobra.Command {
	opts := &PruneOptions{IO: f.IOStreams, Consul: f.Consul, Dial: agentDialer(f),
		StdinTTY: f.IOStreams.IsStdinTTY}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Deregister instances that stay critical for longer than a threshold",
		Long: `Deregister the instances that have been critical for at least --critical-for,
through the agents that own them (see 'microctl registry deregister').

Consul records no time of change, so how long an instance has been critical
cannot be read: prune measures it. It reads the catalog, then watches the
critical instances for --critical-for, and keeps only those whose critical
checks did not change at all in that time (Consul moves a check's
ModifyIndex on every status change, so an unchanged index proves an
unchanged status). An instance that recovers, even briefly, is spared. So
prune takes --critical-for to run when anything is critical; --critical-for
0 takes every instance critical right now.

An instance counts as critical when any of its checks is, its node's
included: an instance on a node whose agent is gone (serfHealth critical)
cannot be deregistered through that agent; --catalog-fallback removes it
from the catalog, which is then safe.

--dry-run lists what would be removed and removes nothing. Otherwise prune
asks before removing, reading the answer from stdin; without a terminal on
stdin it refuses unless --yes is given.`,
		Example: `  microctl registry prune --dry-run
  microctl registry prune --critical-for 5m --service go.micro.srv.greeter --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.CriticalFor < 0 {
				return cmdutil.Usagef("--critical-for must not be negative")
			}
			if opts.AgentPort < 0 || opts.AgentPort > 65535 {
				return cmdutil.Usagef("--agent-port must be between 1 and 65535")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return pruneRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.DurationVar(&opts.CriticalFor, "critical-for", 2*time.Minute, "remove only instances critical, unchanged, for at least this long (measured by watching)")
	fl.StringArrayVar(&opts.Services, "service", nil, "only instances of this service (repeatable)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "list what would be removed; remove nothing")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	fl.BoolVar(&opts.CatalogFallback, "catalog-fallback", false, "deregister from the catalog when the owning agent cannot (anti-entropy may restore it)")
	fl.IntVar(&opts.AgentPort, "agent-port", 0, "HTTP port of other nodes' Consul agents (default: the port of the agent microctl talks to)")
	return cmd
}

func pruneRun(ctx context.Context, opts *PruneOptions) error {
	if !opts.DryRun {
		// Refuse before the observation, not after minutes of it.
		if err := cmdutil.RequireConfirmable(opts.Yes, opts.StdinTTY(), "prune"); err != nil {
			return err
		}
	}
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	if len(opts.Services) > 0 {
		if _, err := health.Read(ctx, c, health.Options{Services: opts.Services}); err != nil {
			return err
		}
	}
	obs, err := health.ObserveCritical(ctx, c, health.PruneOptions{CriticalFor: opts.CriticalFor, Services: opts.Services,
		Progress: func(msg string) { opts.IO.Infof("%s", msg) }})
	if err != nil {
		return err
	}
	for _, s := range obs.Spared {
		opts.IO.Infof("spared %s (%s, node %s): %s", s.Instance, s.Service, s.Node, s.Reason)
	}
	if opts.DryRun || len(obs.Candidates) == 0 {
		if opts.Output.JSON() {
			return cmdutil.PrintJSON(opts.IO.Out, struct {
				DryRun     bool                    `json:"dry_run"`
				Candidates []health.PruneCandidate `json:"candidates"`
				Spared     []health.Spared         `json:"spared"`
			}{opts.DryRun, obs.Candidates, obs.Spared})
		}
		if len(obs.Candidates) == 0 {
			fmt.Fprintf(opts.IO.ErrOut, "nothing to prune: no instance stayed critical for %s\n", opts.CriticalFor)
			return nil
		}
		t := cmdutil.NewTable(opts.IO.Out, "WOULD DEREGISTER", "SERVICE", "NODE", "CRITICAL CHECKS", "OBSERVED")
		for _, cand := range obs.Candidates {
			t.Row(cand.ID, cand.Service, cand.Node, checkIDs(cand.CriticalChecks), observed(cand.ObservedFor))
		}
		return t.Flush()
	}
	targets := make([]health.Instance, 0, len(obs.Candidates))
	down := map[string]bool{}
	for _, cand := range obs.Candidates {
		targets = append(targets, cand.Instance)
		down[cand.Raw.Key()] = cand.NodeCritical
	}
	return removeInstances(ctx, removeParams{IO: opts.IO, Client: c, Dial: opts.Dial, Yes: opts.Yes,
		CatalogFallback: opts.CatalogFallback, AgentPort: opts.AgentPort, Output: opts.Output}, targets, down)
}

func checkIDs(cs []registry.Check) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += ","
		}
		s += c.CheckID
	}
	return s
}

func observed(s health.Seconds) string {
	if s == 0 {
		return "not observed (--critical-for 0)"
	}
	return s.Duration().Round(100 * time.Millisecond).String()
}
