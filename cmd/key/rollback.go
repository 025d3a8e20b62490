package key

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// RollbackOptions are the inputs of `microctl key rollback`.
type RollbackOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output cmdutil.Format
	Grace  time.Duration
	Force  bool
	DryRun bool
}

// NewCmdRollback builds `key rollback`.
func NewCmdRollback(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Make the previous key current again",
		Long: `Undo a rotation: the newest previous key that still verifies becomes current
again. The key it replaces stays verifiable as next, so tokens it signed
keep working and the next rotation promotes it again. The next key that
rotation had published is dropped if it never signed (or kept as previous
for --grace if it did).

Use it when a gateway cannot handle the new key. For a leaked key use
key rotate --revoke instead.`,
		Example: `  microctl key rollback
  microctl key rollback --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.Grace < 0 {
				return cmdutil.Usagef("--grace must not be negative")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runRollback(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.DurationVar(&opts.Grace, "grace", 0, "how long a displaced key that has signed keeps verifying (default: the longest token lifetime)")
	fl.BoolVar(&opts.Force, "force", false, "accept a --grace shorter than the longest token lifetime")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would change; write nothing")
	return cmd
}

func runRollback(ctx context.Context, opts *RollbackOptions) error {
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	res, err := s.Rollback(ctx, keys.RollbackOptions{Grace: opts.Grace, Force: opts.Force, DryRun: opts.DryRun})
	if err != nil {
		return err
	}
	return renderResult(opts.IO, opts.Output, res)
}
