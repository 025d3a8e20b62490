package swarm

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// StatusOptions are the inputs of `microctl swarm status`.
type StatusOptions struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)

	Output cmdutil.Format
}

// NewCmdStatus builds `microctl swarm status`.
func NewCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{IO: f.IOStreams, Docker: f.Docker}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the swarm: nodes, their state, the overlay networks",
		Long: `Show the swarm this engine manages: its ID, this node's role, every node
(hostname, role, availability, state, manager reachability, engine version)
and the overlay networks with their subnets. Needs a manager.

Exit code 3 when a node is not ready (down, disconnected, unknown) or a
manager is unreachable; the problems are listed after the tables and
summed up on stderr. A drained or paused node is not a problem.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.`,
		Example: `  microctl swarm status
  microctl swarm status -o json | jq '.nodes[] | select(.state != "ready")'
  microctl swarm status >/dev/null || echo "swarm degraded"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runStatus(ctx context.Context, opts *StatusOptions) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	rep, err := sw.Status(ctx, cli)
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		err = cmdutil.PrintJSON(opts.IO.Out, rep)
	} else {
		err = renderStatus(opts.IO.Out, rep)
	}
	if err != nil {
		return err
	}
	if !rep.Healthy {
		noun := "problems"
		if len(rep.Problems) == 1 {
			noun = "problem"
		}
		return cmdutil.Unhealthy("swarm unhealthy: %d %s: %s", len(rep.Problems), noun, strings.Join(rep.Problems, "; "))
	}
	return nil
}

func renderStatus(w io.Writer, rep sw.StatusReport) error {
	fmt.Fprintf(w, "Swarm %s, created %s\n", rep.SwarmID, rep.CreatedAt.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "This node: %s, %s, at %s\n\n", stringid.TruncateID(rep.NodeID), rep.Role, rep.ManagerAddr)

	t := cmdutil.NewTable(w, "ID", "HOSTNAME", "ROLE", "AVAILABILITY", "STATE", "MANAGER", "ADDRESS", "ENGINE")
	ready := 0
	for _, n := range rep.Nodes {
		id := stringid.TruncateID(n.ID)
		if n.Self {
			id += " *"
		}
		mgr := n.ManagerReachability
		if n.Leader {
			mgr = "leader"
		}
		if n.State == "ready" {
			ready++
		}
		t.Row(id, n.Hostname, n.Role, n.Availability, n.State, dash(mgr), dash(n.Addr), dash(n.EngineVersion))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = cmdutil.NewTable(w, "NETWORK", "ID", "SUBNETS", "ATTACHABLE", "ENCRYPTED", "SERVICES")
	for _, n := range rep.Networks {
		name := n.Name
		if n.Ingress && n.Name != "ingress" {
			name += " (ingress)"
		}
		t.Row(name, stringid.TruncateID(n.ID), dash(n.SubnetList()), yesNo(n.Attachable), yesNo(n.Encrypted), fmt.Sprint(len(n.Services)))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s, %d ready, %s\n", plural(len(rep.Nodes), "node"), ready, plural(rep.Managers, "manager"))
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "problem: "+p)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
