package network

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// InspectOptions are the inputs of `microctl network inspect`.
type InspectOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Name   string
	Output cmdutil.Format
}

// NewCmdInspect builds `microctl network inspect`.
func NewCmdInspect(f *cmdutil.Factory, runF func(context.Context, *InspectOptions) error) *cobra.Command {
	opts := &InspectOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "inspect NAME|ID",
		Short: "Show one network: subnets, flags, services, peers",
		Long: `Show one network by name or ID: driver, scope, subnets with gateways and
ranges, the attachable/encrypted/internal flags, labels, the services
attached and the peers (the nodes this engine sees on the network; only a
node with a task on the network has peers).

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl network inspect micro
  microctl network inspect micro -o json | jq '.peers | length'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInspect(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runInspect(ctx context.Context, opts *InspectOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	n, err := sw.InspectOverlay(ctx, cli, opts.Name)
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, n)
	}
	return renderInspect(opts.IO.Out, n)
}

func renderInspect(w io.Writer, n sw.OverlayNetwork) error {
	t := cmdutil.NewTable(w)
	t.Row("Name:", n.Name)
	t.Row("ID:", n.ID)
	t.Row("Driver:", n.Driver+" (scope "+n.Scope+")")
	t.Row("Created:", n.CreatedAt.UTC().Format("2006-01-02 15:04:05 MST"))
	for i, s := range n.Subnets {
		label := "Subnet:"
		if i > 0 {
			label = ""
		}
		v := s.Subnet
		if s.Gateway != "" {
			v += " gateway " + s.Gateway
		}
		if s.IPRange != "" {
			v += " range " + s.IPRange
		}
		t.Row(label, v)
	}
	if len(n.Subnets) == 0 {
		t.Row("Subnet:", "-")
	}
	t.Row("Attachable:", yesNo(n.Attachable))
	t.Row("Encrypted:", yesNo(n.Encrypted))
	t.Row("Internal:", yesNo(n.Internal))
	if n.Ingress {
		t.Row("Ingress:", "yes")
	}
	labels := make([]string, 0, len(n.Labels))
	for _, k := range slices.Sorted(maps.Keys(n.Labels)) {
		labels = append(labels, k+"="+n.Labels[k])
	}
	t.Row("Labels:", dash(strings.Join(labels, ", ")))
	t.Row("Services:", dash(strings.Join(n.Services, ", ")))
	peers := make([]string, 0, len(n.Peers))
	for _, p := range n.Peers {
		peers = append(peers, fmt.Sprintf("%s (%s)", p.IP, p.Name))
	}
	t.Row("Peers:", dash(strings.Join(peers, ", ")))
	return t.Flush()
}
