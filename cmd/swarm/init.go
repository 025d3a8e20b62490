package swarm

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// InitOptions are the inputs of `microctl swarm init`.
type InitOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	AdvertiseAddr    string
	ListenAddr       string
	DataPathPort     uint32
	DefaultAddrPools []string
	Networks         []string
	NoNetwork        bool
	Encrypted        bool
	Autolock         bool
	Quiet            bool
	Output           cmdutil.Format

	// Specs are the networks to ensure, parsed from Networks.
	Specs []sw.NetworkSpec
}

// NewCmdInit builds `microctl swarm init`. runF replaces the run function in
// tests that only check flag parsing.
func NewCmdInit(f *cmdutil.Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Initialise a swarm and its overlay network (idempotent)",
		Long: `Make this Docker Engine the manager of a new swarm and create the attachable
overlay network that go-micro services share (named micro unless --network
says otherwise), then print the commands that join workers and managers.

Idempotent: on an engine that already manages a swarm it reports that swarm,
still creates the networks that are missing, and leaves identical ones alone.
A network that exists with other settings (subnet, encryption, ...) is an
error naming each difference; it is never reused silently. An engine that is
a worker is refused.

Everything that can be checked without changing anything is checked first:
the options, the engine's state, the addresses, each network's name and
subnet (a subnet that overlaps a network in use is refused). If a network
still fails after the swarm was made, the error says what exists now.

--advertise-addr and --listen-addr take an IP address or an interface name,
with an optional port; with a local engine (unix socket) an interface name
is resolved to its address here, and an unknown one lists the interfaces.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl swarm init
  microctl swarm init --advertise-addr eth0 --network micro:10.10.0.0/24 --encrypted
  microctl swarm init --network micro --network backend:10.20.0.0/24
  microctl swarm init --no-network -q
  microctl swarm init -o json | jq -r .join_tokens.worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.NoNetwork && len(opts.Networks) > 0 {
				return cmdutil.Usagef("--no-network and --network exclude each other")
			}
			if opts.Quiet && opts.Output.JSON() {
				return cmdutil.Usagef("-q and -o json exclude each other")
			}
			opts.Specs = nil
			names := opts.Networks
			if len(names) == 0 && !opts.NoNetwork {
				names = []string{sw.DefaultNetworkName}
			}
			for _, n := range names {
				name, cidr, err := sw.ParseNetworkFlag(n)
				if err != nil {
					return &cmdutil.UsageError{Err: err}
				}
				spec := sw.NetworkSpec{Name: name, Attachable: true, Encrypted: opts.Encrypted}
				if cidr != "" {
					spec.Pools = []sw.IPAMPool{{Subnet: cidr}}
				}
				opts.Specs = append(opts.Specs, spec)
			}
			if err := opts.pkgOptions().Validate(); err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.AdvertiseAddr, "advertise-addr", "", "address other nodes reach this one at: IP[:PORT] or INTERFACE[:PORT] (default: the engine chooses)")
	fl.StringVar(&opts.ListenAddr, "listen-addr", "", "address the manager listens on: IP[:PORT] or INTERFACE[:PORT] (default 0.0.0.0:2377)")
	fl.Uint32Var(&opts.DataPathPort, "data-path-port", 0, "UDP port for overlay (VXLAN) traffic, 1024-49151 (default 4789)")
	fl.StringArrayVar(&opts.DefaultAddrPools, "default-addr-pool", nil, "CIDR that overlay subnets are allocated from (repeatable; default 10.0.0.0/8)")
	fl.StringArrayVar(&opts.Networks, "network", nil, "overlay network to ensure, NAME[:CIDR] (repeatable; default micro)")
	fl.BoolVar(&opts.NoNetwork, "no-network", false, "create no network")
	fl.BoolVar(&opts.Encrypted, "encrypted", false, "encrypt the networks' traffic between nodes (IPsec)")
	fl.BoolVar(&opts.Autolock, "autolock", false, "lock managers' keys at rest; a restarted manager then needs the unlock key")
	fl.BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the worker and manager join tokens, one per line")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func (o *InitOptions) pkgOptions() sw.InitOptions {
	return sw.InitOptions{
		AdvertiseAddr:    o.AdvertiseAddr,
		ListenAddr:       o.ListenAddr,
		DataPathPort:     o.DataPathPort,
		DefaultAddrPools: o.DefaultAddrPools,
		Autolock:         o.Autolock,
		Networks:         o.Specs,
	}
}

func runInit(ctx context.Context, opts *InitOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	res, err := sw.Init(ctx, cli, opts.pkgOptions())
	if err != nil {
		return asUsage(err)
	}
	for _, w := range res.Warnings {
		opts.IO.Warnf("%s", w)
	}
	switch {
	case opts.Output.JSON():
		return cmdutil.PrintJSON(opts.IO.Out, res)
	case opts.Quiet:
		fmt.Fprintln(opts.IO.Out, res.JoinTokens.Worker)
		fmt.Fprintln(opts.IO.Out, res.JoinTokens.Manager)
		if res.UnlockKey != "" {
			fmt.Fprintf(opts.IO.ErrOut, "unlock key: %s (keep it safe: a restarted manager needs it)\n", res.UnlockKey)
		}
		return nil
	}
	renderInit(opts.IO.Out, res)
	return nil
}

func renderInit(w io.Writer, res sw.InitResult) {
	if res.Initialised {
		fmt.Fprintf(w, "Swarm initialised: swarm %s, this node (%s) is its manager at %s.\n", stringid.TruncateID(res.SwarmID), stringid.TruncateID(res.NodeID), res.ManagerAddr)
	} else {
		fmt.Fprintf(w, "This node (%s) already manages swarm %s at %s; nothing to initialise.\n", stringid.TruncateID(res.NodeID), stringid.TruncateID(res.SwarmID), res.ManagerAddr)
	}
	for _, n := range res.Networks {
		verb := "created"
		if !n.Created {
			verb = "already there"
		}
		fmt.Fprintf(w, "Network %s: %s (%s).\n", n.Name, verb, describe(n.OverlayNetwork))
	}
	fmt.Fprintf(w, "\nTo add a worker to this swarm, run on it:\n    %s\n", res.JoinCommand.Worker)
	fmt.Fprintf(w, "To add a manager, run on it:\n    %s\n", res.JoinCommand.Manager)
	if res.UnlockKey != "" {
		fmt.Fprintf(w, "\nThe swarm is autolocked. Unlock key (keep it safe; a restarted manager needs it: docker swarm unlock):\n    %s\n", res.UnlockKey)
	}
}

func describe(n sw.OverlayNetwork) string {
	spec := sw.NetworkSpec{Name: n.Name, Driver: n.Driver, Attachable: n.Attachable, Encrypted: n.Encrypted, Internal: n.Internal}
	for _, s := range n.Subnets {
		spec.Pools = append(spec.Pools, sw.IPAMPool{Subnet: s.Subnet})
	}
	return spec.Describe()
}
