// Package doctor implements `microctl doctor`.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
	"github.com/microctl/microctl/pkg/stack/mesh"
	"github.com/microctl/microctl/pkg/swarm"
)

// Options are the inputs of `microctl doctor`.
type Options struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)
	Consul func() (*registry.Client, error)

	Output  cmdutil.Format
	Timeout time.Duration
}

// NewCmdDoctor builds the command. runF replaces the run function in tests
// that only check flag parsing.
func NewCmdDoctor(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Docker: f.Docker, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that the deployment is healthy, in one look",
		Long: `Check the Docker Engine and Consul that microctl talks to, one line per check
with its verdict and, when something is wrong, what to do about it.

Checks: the Docker Engine answers; its API version is supported; this node
is a swarm manager; the overlay network "micro" exists; Consul answers; a
leader is elected; the ACL token is accepted; no registered instance is
critical or stale and health lint finds nothing; the JWT key ring (at
MICROCTL_KEY_PATH, default micro/config/jwt) reads, its current key is
younger than the rotation period and a next key is published. Key checks are
skipped when there is no ring.

Exit code 3 when any check fails, so doctor can gate a script.`,
		Example: `  microctl doctor
  microctl doctor -o json | jq '.checks[] | select(.status != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Timeout <= 0 {
				return cmdutil.Usagef("--timeout must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 10*time.Second, "give up on a check after this long")
	return cmd
}

// budgetGrace is how long after --timeout the run itself is cut.
const budgetGrace = time.Second

func run(ctx context.Context, opts *Options) error {
	// --timeout also bounds each request (cmdutil.TimeoutFlag), and a
	// request cut by its bound says so in its own words ("Consul at X did
	// not answer within 2s"). The run's deadline comes a moment later, so
	// that line is what the check shows, not a bare "deadline exceeded".
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout+budgetGrace)
	defer cancel()
	rep := doctor.Run(ctx, checks(opts)...)
	if ctx.Err() != nil && context.Cause(ctx) == context.Canceled {
		return ctx.Err()
	}
	if err := render(opts, rep); err != nil {
		return err
	}
	if !rep.Healthy {
		return &cmdutil.UnhealthyError{}
	}
	return nil
}

// checks lists what each package offers, in the order doctor prints it. A
// package's checks, their clients and their skip reasons are its own
// business (its Doctor function); this list only says which packages are
// asked.
func checks(opts *Options) []doctor.Descriptor {
	return slices.Concat(
		swarm.Doctor(opts.Docker),
		registry.Doctor(opts.Consul),
		health.Doctor(opts.Consul),
		keys.Doctor(opts.Consul, ""),
		mesh.Doctor(opts.Docker, opts.Consul),
	)
}

func render(opts *Options, rep doctor.Report) error {
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, rep)
	}
	t := cmdutil.NewTable(opts.IO.Out, "STATUS", "CHECK", "DETAIL")
	for _, r := range rep.Results {
		d := r.Detail
		if r.Hint != "" {
			d += " (" + r.Hint + ")"
		}
		t.Row(string(r.Status), r.Check, d)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	n := rep.Counts()
	fmt.Fprintf(opts.IO.Out, "\n%d checks: %d ok, %d warning, %d failed, %d skipped\n",
		len(rep.Results), n[doctor.OK], n[doctor.Warn], n[doctor.Fail], n[doctor.Skip])
	return nil
}
