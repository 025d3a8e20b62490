package key

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/registry"
)

// LogOptions are the inputs of `microctl key log`.
type LogOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output cmdutil.Format
	Since  time.Duration
}

// NewCmdLog builds `key log`.
func NewCmdLog(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *LogOptions) error) *cobra.Command {
	opts := &LogOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Show the ring's audit trail: who changed it, when, how",
		Long: `Show the audit records every change writes under microctl/audit/<path>/,
oldest first: when, who ($USER@host and the ACL token's accessor), what
(init, rotate, rollback, prune, seal, rekey, record-ttl), the generation it
made and the keys it touched. --since limits it to recent records.

Records are kept until a write with --audit-keep deletes older ones.`,
		Example: `  microctl key log
  microctl key log --since 7d
  microctl key log -o json | jq -r '.[] | select(.op == "rotate") | .at'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.Since < 0 {
				return cmdutil.Usagef("--since must not be negative")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runLog(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().Var((*days)(&opts.Since), "since", "only records written in this last duration (e.g. 24h, 7d)")
	return cmd
}

func runLog(ctx context.Context, opts *LogOptions) error {
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	entries, err := s.Log(ctx, opts.Since)
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, entries)
	}
	t := cmdutil.NewTable(opts.IO.Out, "TIME", "OP", "GEN", "WHO", "CURRENT", "CHANGES")
	for _, e := range entries {
		if e.Unreadable != "" {
			t.Row("-", "?", "-", "-", "-", e.Key+": "+e.Unreadable)
			continue
		}
		var ch []string
		for _, p := range []struct {
			what string
			kids []string
		}{{"added", e.Added}, {"retired", e.Retired}, {"revoked", e.Revoked}, {"pruned", e.Pruned}} {
			if len(p.kids) > 0 {
				ch = append(ch, p.what+" "+strings.Join(shortKids(p.kids), ","))
			}
		}
		if e.Forced {
			ch = append(ch, "forced")
		}
		t.Row(e.At.UTC().Format(time.RFC3339), e.Op, strconv.FormatInt(e.Generation, 10), e.Who, shortKid(e.Current), strings.Join(ch, "; "))
	}
	return t.Flush()
}

func shortKid(k string) string {
	if len(k) > 8 {
		return k[:8]
	}
	return k
}

func shortKids(ks []string) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = shortKid(k)
	}
	return out
}
