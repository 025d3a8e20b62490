package key

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// PruneOptions are the inputs of `microctl key prune`.
type PruneOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output cmdutil.Format
	DryRun bool
}

// NewCmdPrune builds `key prune`.
func NewCmdPrune(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *PruneOptions) error) *cobra.Command {
	opts := &PruneOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Drop keys past their retire_after",
		Long: `Drop every key past its retire_after (and revoked keys) from the ring, with
its private key. Idempotent and safe from cron: with nothing to drop it
writes nothing and takes no lock.`,
		Example: `  microctl key prune
  # crontab: every hour
  0 * * * * microctl key prune -o json >>/var/log/microctl-prune.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPrune(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "show what would be dropped; write nothing")
	return cmd
}

func runPrune(ctx context.Context, opts *PruneOptions) error {
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	res, err := s.Prune(ctx, keys.PruneOptions{DryRun: opts.DryRun})
	if err != nil {
		return err
	}
	return renderResult(opts.IO, opts.Output, res)
}
