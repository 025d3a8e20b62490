package health

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
	"github.com/microctl/microctl/pkg/swarm"
)

// LintOptions are the inputs of `microctl health lint`.
type LintOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Docker func() (client.APIClient, error)

	Services       []string
	Defaults       health.Defaults
	OverlaySubnets []string
	NoDocker       bool
	Output         cmdutil.Format
}

// NewCmdLint builds `health lint`.
func NewCmdLint(f *cmdutil.Factory, runF func(context.Context, *LintOptions) error) *cobra.Command {
	opts := &LintOptions{IO: f.IOStreams, Consul: f.Consul, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "lint [SERVICE...]",
		Short: "Find registrations that will misbehave: TTL vs interval, no check, unreachable address",
		Long: `Find registrations that will misbehave. Each finding has a rule ID that never
changes meaning (the "rule" field of -o json):

  interval-ge-ttl       error    interval >= TTL: the TTL expires between two
                                 heartbeats, so the instance turns critical
  interval-gt-half-ttl  warning  interval > TTL/2: one lost heartbeat expires it
                                 (the seed used 15s/10s; go-micro's defaults
                                 are 90s/30s)
  no-check              error    no health check: Consul reports the instance
                                 passing even after it died
  deregister-lt-ttl     warning  DeregisterCriticalServiceAfter shorter than
                                 the TTL (only when published in Meta
                                 micro_deregister_critical_after: Consul
                                 returns it from no endpoint)
  ttl-mismatch          warning  instances of one service disagree on TTL
  interval-mismatch     warning  … or on the interval
  unreachable-address   error    loopback, unspecified, link-local or
                                 multicast address: no other host can dial it
                        warning  on a swarm: an address in no overlay
                                 network and no node's own (a bridge or
                                 ingress address, the Swarm article's trap)
  malformed-tags        warning  go-micro tags that do not decode

TTL and interval come from Meta (micro_register_ttl, micro_register_interval)
or --ttl / --interval; instances with neither are not judged by the
interval rules, and a note says so.

Overlay networks are learnt from the Docker Engine (DOCKER_HOST or
--docker-host) when it is a swarm manager, or given with --overlay-subnet;
otherwise only addresses no other host can reach are flagged. What cannot be
known from here: firewalls, routes between hosts, and what a hostname
resolves to elsewhere.

Exit code 3 when anything is found.`,
		Example: `  microctl health lint
  microctl health lint --overlay-subnet micro=10.0.1.0/24 -o json | jq -r '.findings[].rule'
  microctl health lint go.micro.srv.greeter --ttl 15 --interval 10`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = dedupe(args)
			if _, err := parseSubnets(opts.OverlaySubnets); err != nil {
				return cmdutil.Usagef("%v", err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return lintRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.OverlaySubnets, "overlay-subnet", nil, "an overlay network's subnet, CIDR or NAME=CIDR (repeatable); skips asking Docker")
	fl.BoolVar(&opts.NoDocker, "no-docker", false, "do not ask the Docker Engine for the swarm's networks")
	addTimingFlags(cmd, &opts.Defaults)
	return cmd
}

func lintRun(ctx context.Context, opts *LintOptions) error {
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	snap, err := health.Read(ctx, c, health.Options{Services: opts.Services, Defaults: opts.Defaults})
	if err != nil {
		return err
	}
	warn(opts.IO, snap.Warnings)
	nets, why := networks(ctx, opts)
	rep := health.Lint(snap.Instances, health.LintOptions{Networks: nets, NetworksUnknown: why})
	if opts.Output.JSON() {
		if err := cmdutil.PrintJSON(opts.IO.Out, rep); err != nil {
			return err
		}
	} else {
		for _, n := range rep.Notes {
			opts.IO.Notef("%s", n)
		}
		renderLint(opts, rep)
	}
	if len(rep.Findings) > 0 {
		return &cmdutil.UnhealthyError{}
	}
	return nil
}

// networks returns the swarm's networks, from the flags or Docker, or why
// they are unknown.
func networks(ctx context.Context, opts *LintOptions) (*health.Networks, string) {
	if len(opts.OverlaySubnets) > 0 {
		subnets, _ := parseSubnets(opts.OverlaySubnets) // validated in RunE
		return &health.Networks{Overlays: subnets}, ""
	}
	if opts.NoDocker || opts.Docker == nil {
		return nil, "--no-docker"
	}
	cli, err := opts.Docker()
	if err != nil {
		return nil, "Docker Engine not usable: " + err.Error()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	space, err := swarm.Subnets(ctx, cli)
	if err != nil {
		return nil, err.Error()
	}
	return networksOf(space), ""
}

func renderLint(opts *LintOptions, rep health.LintReport) {
	w := opts.IO.Out
	errs := 0
	for _, f := range rep.Findings {
		if f.Severity == health.SevError {
			errs++
		}
		subject := f.Service
		if f.Instance != "" {
			subject += " " + f.Instance
		}
		fmt.Fprintf(w, "%-7s  %-20s  %s: %s\n", f.Severity, f.Rule, subject, f.Message)
		if f.Hint != "" {
			fmt.Fprintf(w, "%-7s  %-20s  fix: %s\n", "", "", f.Hint)
		}
	}
	if len(rep.Findings) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d finding(s) (%d error(s), %d warning(s)) in %d instance(s)\n",
		len(rep.Findings), errs, len(rep.Findings)-errs, rep.Instances)
}
