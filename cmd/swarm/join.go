package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// JoinOptions are the inputs of `microctl swarm join`.
type JoinOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Token         string
	ManagerAddr   string
	AdvertiseAddr string
	ListenAddr    string
	Availability  string
	Output        cmdutil.Format
}

// NewCmdJoin builds `microctl swarm join`.
func NewCmdJoin(f *cmdutil.Factory, runF func(context.Context, *JoinOptions) error) *cobra.Command {
	opts := &JoinOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "join --token TOKEN MANAGER_ADDR",
		Short: "Join this engine to a swarm as a worker or a manager",
		Long: `Join the Docker Engine to the swarm whose manager listens at MANAGER_ADDR
(HOST[:PORT], port 2377 by default). The token decides the role: print it on
a manager with microctl swarm token worker (or manager).

Idempotent: an engine that is already in that swarm (MANAGER_ADDR is one of
the managers it knows) is reported and left alone; an engine in another
swarm is refused.

Environment: DOCKER_HOST (the engine that joins), DOCKER_TLS_VERIFY,
DOCKER_CERT_PATH.`,
		Example: `  microctl swarm join --token SWMTKN-1-... 10.0.0.1:2377
  DOCKER_HOST=ssh://node2 microctl swarm join --token "$(microctl swarm token worker -q)" 10.0.0.1
  microctl swarm join --token SWMTKN-1-... --advertise-addr eth1 --availability drain 10.0.0.1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ManagerAddr = args[0]
			if opts.Token == "" {
				return cmdutil.Usagef("--token is required (print it on a manager: microctl swarm token worker)")
			}
			if err := opts.pkgOptions().Validate(); err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runJoin(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Token, "token", "", "join token from microctl swarm token worker|manager")
	fl.StringVar(&opts.AdvertiseAddr, "advertise-addr", "", "address other nodes reach this one at: IP[:PORT] or INTERFACE[:PORT]")
	fl.StringVar(&opts.ListenAddr, "listen-addr", "", "address to listen on for swarm traffic: IP[:PORT] or INTERFACE[:PORT] (default 0.0.0.0:2377)")
	fl.StringVar(&opts.Availability, "availability", "active", "active, pause or drain")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func (o *JoinOptions) pkgOptions() sw.JoinOptions {
	return sw.JoinOptions{Token: o.Token, RemoteAddr: o.ManagerAddr, AdvertiseAddr: o.AdvertiseAddr,
		ListenAddr: o.ListenAddr, Availability: o.Availability}
}

func runJoin(ctx context.Context, opts *JoinOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	res, err := sw.Join(ctx, cli, opts.pkgOptions())
	if err != nil {
		return asUsage(err)
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, res)
	}
	if res.Joined {
		fmt.Fprintf(opts.IO.Out, "This node (%s) joined the swarm at %s as a %s.\n", stringid.TruncateID(res.NodeID), res.ManagerAddr, res.Role)
	} else {
		fmt.Fprintf(opts.IO.Out, "This node (%s) is already a %s in the swarm at %s; nothing to do.\n", stringid.TruncateID(res.NodeID), res.Role, res.ManagerAddr)
	}
	return nil
}
