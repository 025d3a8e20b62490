package network

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// CreateOptions are the inputs of `microctl network create`.
type CreateOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Name       string
	Subnets    []string
	Gateways   []string
	IPRanges   []string
	Encrypted  bool
	Internal   bool
	Attachable bool
	Labels     []string
	Output     cmdutil.Format

	// Spec is what the flags ask for, built in NewCmdCreate.
	Spec sw.NetworkSpec
}

// NewCmdCreate builds `microctl network create`.
func NewCmdCreate(f *cmdutil.Factory, runF func(context.Context, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an overlay network (idempotent)",
		Long: `Create a swarm-scoped overlay network, attachable by default so that
standalone containers can join it too.

Idempotent: when a network with that name exists with the same settings,
nothing is done and the exit code is 0. When it exists with other settings
the command fails and names each difference (subnet, gateway, ip-range,
encrypted, internal, attachable, driver, scope, labels): microctl never
reuses a network with another subnet or without the encryption asked for.

A subnet is written as a network address (10.10.0.0/24, not 10.10.0.1/24)
and must not overlap the subnet of any network the engine has; gateways and
ip-ranges go with the subnet that contains them. Needs a manager.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl network create micro
  microctl network create backend --subnet 10.20.0.0/24 --encrypted
  microctl network create edge --subnet 10.30.0.0/16 --gateway 10.30.0.1 --ip-range 10.30.8.0/21
  microctl network create private --internal --attachable=false --label team=payments`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			pools, err := sw.BuildPools(opts.Subnets, opts.Gateways, opts.IPRanges)
			if err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			labels, err := sw.ParseLabels(opts.Labels)
			if err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			opts.Spec = sw.NetworkSpec{Name: opts.Name, Pools: pools, Encrypted: opts.Encrypted,
				Internal: opts.Internal, Attachable: opts.Attachable, Labels: labels}
			if err := opts.Spec.Validate(); err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runCreate(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&opts.Subnets, "subnet", nil, "subnet in CIDR form (repeatable; default: allocated from the swarm's pool)")
	fl.StringArrayVar(&opts.Gateways, "gateway", nil, "gateway of the subnet that contains it (repeatable)")
	fl.StringArrayVar(&opts.IPRanges, "ip-range", nil, "allocate container addresses from this sub-range of a subnet (repeatable)")
	fl.BoolVar(&opts.Encrypted, "encrypted", false, "encrypt traffic between nodes (IPsec)")
	fl.BoolVar(&opts.Internal, "internal", false, "no access to outside networks")
	fl.BoolVar(&opts.Attachable, "attachable", true, "let standalone containers attach (docker run --network)")
	fl.StringArrayVar(&opts.Labels, "label", nil, "label KEY=VALUE (repeatable)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runCreate(ctx context.Context, opts *CreateOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	if _, err := sw.RequireManager(ctx, cli); err != nil {
		return err
	}
	created, err := sw.EnsureNetwork(ctx, cli, opts.Spec)
	if err != nil {
		return err
	}
	n, err := sw.InspectOverlay(ctx, cli, opts.Name)
	if err != nil {
		return fmt.Errorf("network %s ensured, but reading it back failed: %w", opts.Name, err)
	}
	res := sw.NetworkResult{OverlayNetwork: n, Created: created}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, res)
	}
	if created {
		fmt.Fprintf(opts.IO.Out, "Network %s created: %s (ID %s).\n", n.Name, describe(n), stringid.TruncateID(n.ID))
	} else {
		fmt.Fprintf(opts.IO.Out, "Network %s already exists with these settings (%s); nothing to do.\n", n.Name, describe(n))
	}
	return nil
}
