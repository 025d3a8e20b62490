// Package health implements `microctl health`: the health of go-micro
// instances in Consul, a watch on their changes, and a lint of their
// registrations.
package health

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// Options are the inputs of `microctl health`.
type Options struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)

	Services []string
	State    string
	FailOn   string
	Defaults health.Defaults
	Output   cmdutil.Format
}

// NewCmdHealth builds `health` and its subcommands.
func NewCmdHealth(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "health [SERVICE...]",
		Short: "Show every instance's checks, TTL and interval; exit 3 when unhealthy",
		Long: `Show a row per instance and check: service, instance, node, check type (ttl,
http, tcp, grpc, script, alias; serf for the node's agent), status, TTL and
interval when known, and the check's output; then a summary line.

An instance is as healthy as its worst check, its node's included: that is
how Consul's ?passing filter and go-micro's discovery decide, so a critical
instance receives no traffic.

TTL and interval: Consul returns neither (a TTL check's TTL is returned by
no endpoint), so they come from the instance's Meta (micro_register_ttl,
micro_register_interval, as microctl's examples publish them), else from
--ttl / --interval when you vouch for them, else show as unknown. For checks
Consul runs itself (http, tcp, grpc) the interval is the check's own.
Time in a state is not shown: Consul records no time of change; 'microctl
health watch' measures it from the transitions it sees.

Exit code 3 when an instance is at least as bad as --fail-on (default
critical), so 'microctl health' can gate a script or a CI job.

The whole catalog is read in a fixed number of requests (two, plus one per
Consul agent), however many services there are.

Consul: CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN and the other CONSUL_* variables,
or the --consul-* flags.`,
		Example: `  microctl health
  microctl health go.micro.srv.greeter --state critical
  microctl health --fail-on warning -o json | jq '.instances[] | select(.status != "passing")'
  microctl health watch
  microctl health lint`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = dedupe(args)
			if !slices.Contains(health.StateFilters, opts.State) {
				return cmdutil.Usagef("--state must be one of %s", strings.Join(health.StateFilters, ", "))
			}
			if !slices.Contains(health.FailOnLevels, opts.FailOn) {
				return cmdutil.Usagef("--fail-on must be one of %s", strings.Join(health.FailOnLevels, ", "))
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.StringVar(&opts.State, "state", "any", "show only checks in this state: any, passing, warning or critical")
	fl.StringVar(&opts.FailOn, "fail-on", registry.StatusCritical, "exit 3 when an instance is at least this bad: warning, critical or never")
	addTimingFlags(cmd, &opts.Defaults)
	cmd.AddCommand(NewCmdWatch(f, nil), NewCmdLint(f, nil), NewCmdExporter(f, nil))
	return cmd
}

func addTimingFlags(cmd *cobra.Command, d *health.Defaults) {
	cmd.Flags().Var(health.DurationValue{D: &d.TTL}, "ttl", "TTL to assume for instances whose Meta has none (seconds, or a duration such as 15s)")
	cmd.Flags().Var(health.DurationValue{D: &d.Interval}, "interval", "heartbeat interval to assume for instances whose Meta has none")
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func run(ctx context.Context, opts *Options) error {
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	snap, err := health.Read(ctx, c, health.Options{Services: opts.Services, Defaults: opts.Defaults})
	if err != nil {
		return err
	}
	warn(opts.IO, snap.Warnings)
	rep := health.NewReport(snap.Instances, health.ReportOptions{State: opts.State, FailOn: opts.FailOn})
	if opts.Output.JSON() {
		if err := cmdutil.PrintJSON(opts.IO.Out, rep); err != nil {
			return err
		}
	} else if err := render(opts, rep); err != nil {
		return err
	}
	if rep.Unhealthy {
		return cmdutil.Unhealthy("%d of %d instance(s) %s or worse (--fail-on %s)", rep.Failing, rep.Summary.Instances, opts.FailOn, opts.FailOn)
	}
	return nil
}

func render(opts *Options, rep health.Report) error {
	w := opts.IO.Out
	if len(rep.Instances) > 0 {
		t := cmdutil.NewTable(w, "SERVICE", "INSTANCE", "NODE", "CHECK", "TYPE", "STATUS", "TTL", "INTERVAL", "OUTPUT")
		for _, in := range rep.Instances {
			if len(in.Checks) == 0 {
				t.Row(in.Service, in.ID, in.Node, "-", "-", in.Status, ttlOf(in), intervalOf(in, nil),
					"no health check: Consul reports it passing whatever happens to it")
				continue
			}
			for _, ch := range in.Checks {
				id, ttl, iv := shortCheckID(in, ch), "-", intervalOf(in, &ch)
				if ch.Scope == "node" {
					id += " (node)"
				}
				if ch.Kind == "ttl" {
					ttl = ttlOf(in)
				}
				t.Row(in.Service, in.ID, in.Node, id, ch.Kind, ch.Status, ttl, iv, orDash(truncate(ch.Output, 60)))
			}
		}
		if err := t.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	s := rep.Summary
	line := fmt.Sprintf("%d instance(s) of %d service(s): %d passing, %d warning, %d critical",
		s.Instances, s.Services, s.Passing, s.Warning, s.Critical)
	if opts.State != "any" {
		line += fmt.Sprintf(" (showing %s checks only)", opts.State)
	}
	fmt.Fprintln(w, line)
	return nil
}

// shortCheckID keeps the table readable: go-micro's check ID repeats the
// instance ID (service:<instance ID>), which the INSTANCE column shows.
// -o json has the full ID.
func shortCheckID(in health.Instance, ch health.CheckState) string {
	if ch.CheckID == "service:"+in.ID {
		return "service:<instance>"
	}
	return ch.CheckID
}

func ttlOf(in health.Instance) string {
	if in.TTLText == nil {
		return "unknown"
	}
	return *in.TTLText
}

// intervalOf is the heartbeat interval for the instance's TTL check (and
// its check-less rows), the check's own interval for checks Consul runs,
// and nothing for node checks.
func intervalOf(in health.Instance, ch *health.CheckState) string {
	switch {
	case ch != nil && ch.Scope == "node":
		return "-"
	case ch != nil && ch.Kind != "ttl":
		return orDash(ch.Interval)
	case in.IntervalText == nil:
		return "unknown"
	}
	return *in.IntervalText
}

func warn(ios *cmdutil.IOStreams, msgs []string) {
	for _, m := range msgs {
		ios.Warnf("%s", m)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
