package registry

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// LsOptions are the inputs of `microctl registry ls`.
type LsOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)

	Output cmdutil.Format
}

// NewCmdLs builds `registry ls`.
func NewCmdLs(f *cmdutil.Factory, runF func(context.Context, *LsOptions) error) *cobra.Command {
	opts := &LsOptions{IO: f.IOStreams, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services with their instance and health counts",
		Long: `List every service in the Consul catalog: how many instances it has, how many
are passing, warning and critical (an instance counts as its worst check,
its node's included, as Consul's discovery and go-micro's do), the versions
decoded from go-micro's v- tags, and the tags that are not go-micro's.

Go-micro tags that do not decode are counted in MALFORMED and named in a
warning on stderr; they never stop the listing.

The whole catalog is read in a fixed number of requests (two, plus one per
Consul agent), however many services there are.`,
		Example: `  microctl registry ls
  microctl registry ls -o json | jq -r '.services[] | select(.critical > 0) | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return lsRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func lsRun(ctx context.Context, opts *LsOptions) error {
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	snap, err := health.Read(ctx, c, health.Options{})
	if err != nil {
		return err
	}
	warn(opts.IO, snap.Warnings)
	sums := health.Summarize(snap.Instances)
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, struct {
			Services []health.ServiceSummary `json:"services"`
		}{sums})
	}
	if len(sums) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no services registered")
		return nil
	}
	t := cmdutil.NewTable(opts.IO.Out, "SERVICE", "INSTANCES", "PASSING", "WARNING", "CRITICAL", "VERSIONS", "TAGS", "MALFORMED")
	for _, s := range sums {
		t.Row(s.Name, fmt.Sprint(s.Instances), fmt.Sprint(s.Passing), fmt.Sprint(s.Warning), fmt.Sprint(s.Critical),
			orDash(strings.Join(s.Versions, ",")), orDash(strings.Join(s.Tags, ",")), fmt.Sprint(s.MalformedTags))
	}
	return t.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
