// Package doctor implements `microctl doctor`.
package doctor

import (
	"context"
	"fmt"
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

func run(ctx context.Context, opts *Options) error {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	rep := doctor.Run(ctx, dockerProbe(opts), networkProbe(opts), consulProbe(opts), registryProbe(opts),
		keys.DoctorProbe(opts.Consul, ""), meshProbe(opts))
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

func dockerProbe(opts *Options) doctor.Probe {
	return lazyProbe(func() (doctor.Probe, error) {
		cli, err := opts.Docker()
		if err != nil {
			return nil, err
		}
		return swarm.EngineProbe(cli), nil
	}, "docker.engine", "docker.api", "docker.swarm")
}

// networkProbe checks that the overlay network every service joins exists.
func networkProbe(opts *Options) doctor.Probe {
	return lazyProbe(func() (doctor.Probe, error) {
		cli, err := opts.Docker()
		if err != nil {
			return nil, err
		}
		return swarm.NetworkProbe(cli, swarm.DefaultNetworkName), nil
	}, swarm.NetworkCheck)
}

// registryProbe looks at what Consul knows: critical instances, stale
// registrations, registrations that will misbehave (health lint).
func registryProbe(opts *Options) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		c, err := opts.Consul()
		if err != nil {
			return doctor.Skipped("no Consul client", "registry.critical", "registry.stale", "registry.lint")
		}
		return health.RegistryProbe(c)(ctx)
	}
}

// meshProbe pairs every stack's mesh services' tasks with their Consul
// instances: orphan registrations and silent tasks.
func meshProbe(opts *Options) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		cli, err := opts.Docker()
		if err != nil {
			return doctor.Skipped("no Docker client", "mesh.orphans", "mesh.silent")
		}
		c, err := opts.Consul()
		if err != nil {
			return doctor.Skipped("no Consul client", "mesh.orphans", "mesh.silent")
		}
		return mesh.DoctorProbe(cli, c)(ctx)
	}
}

func consulProbe(opts *Options) doctor.Probe {
	return lazyProbe(func() (doctor.Probe, error) {
		c, err := opts.Consul()
		if err != nil {
			return nil, err
		}
		return registry.AgentProbe(c), nil
	}, "consul.agent", "consul.leader", "consul.token")
}

// lazyProbe builds a client only when the probe runs; when the client
// cannot be built (a malformed address) the first check fails with the
// reason and the others are skipped.
func lazyProbe(build func() (doctor.Probe, error), first string, rest ...string) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		p, err := build()
		if err != nil {
			return append([]doctor.Result{{Check: first, Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)}},
				doctor.Skipped("no client", rest...)...)
		}
		return p(ctx)
	}
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
