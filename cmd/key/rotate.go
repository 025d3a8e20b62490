package key

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// RotateOptions are the inputs of `microctl key rotate`.
type RotateOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output cmdutil.Format
	Grace  time.Duration
	Force  bool
	Revoke bool
	Yes    bool
	Alg    string
	Bits   int
	DryRun bool
	// Every runs the rotator (rotator.go) instead of rotating once;
	// ConsulFile is where `key schedule` puts its Consul secret.
	Every      time.Duration
	ConsulFile string
}

// NewCmdRotate builds `key rotate`.
func NewCmdRotate(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *RotateOptions) error) *cobra.Command {
	opts := &RotateOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Move every key one step: next signs, current keeps verifying, a new next is published",
		Long: `Rotate the ring: the next key (published since the last rotation) becomes
current; the current key becomes previous and keeps verifying tokens for
--grace; a new next key is published; previous keys past their retire_after
are retired. Tokens in flight keep working.

--grace defaults to the longest token lifetime the ring knows (its
max_token_ttl, or the longest TTL key sign has issued). A shorter grace is
refused unless --force, because tokens the outgoing key signed would be
rejected before they expire.

--revoke --yes is for a leaked key: the current key is retired at once and
every token it signed is rejected as soon as gateways see the change.

Exits 1 with "another rotation won; nothing was written" when another
operator changed the ring between this command's read and its write.`,
		Example: `  microctl key rotate
  microctl key rotate --grace 2h
  microctl key rotate --dry-run
  microctl key rotate --revoke --yes     # the current key leaked
  microctl key rotate --alg ES256        # switch algorithm from the new next key on`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.Grace < 0 {
				return cmdutil.Usagef("--grace must not be negative")
			}
			if opts.Revoke && !opts.Yes && !opts.DryRun {
				return cmdutil.Usagef("--revoke rejects every token the current key signed at once; add --yes to confirm")
			}
			if opts.Revoke && cmd.Flags().Changed("grace") {
				return cmdutil.Usagef("--revoke and --grace do not mix: a revoked key verifies nothing")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if cmd.Flags().Changed("every") {
				return runRotator(cmd.Context(), opts)
			}
			return runRotate(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.DurationVar(&opts.Grace, "grace", 0, "how long the outgoing key keeps verifying (default: the longest token lifetime)")
	fl.BoolVar(&opts.Force, "force", false, "accept a --grace shorter than the longest token lifetime")
	fl.BoolVar(&opts.Revoke, "revoke", false, "retire the current key at once (a leaked key); needs --yes")
	fl.BoolVar(&opts.Yes, "yes", false, "confirm --revoke")
	fl.StringVar(&opts.Alg, "alg", "", "algorithm of the new next key (default: the ring's)")
	fl.IntVar(&opts.Bits, "bits", 0, "RSA key size of the new next key for RS256")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would change; write nothing")
	addRotatorFlags(fl, opts)
	return cmd
}

func runRotate(ctx context.Context, opts *RotateOptions) error {
	alg, err := parseAlg(opts.Alg)
	if err != nil {
		return err
	}
	if alg != "" || opts.Bits != 0 {
		a := alg
		if a == "" {
			a = keys.RS256 // --bits alone: only meaningful for an RS256 ring
		}
		if err := keys.ValidateBits(a, opts.Bits); err != nil {
			return cmdutil.Usagef("%v", err)
		}
	}
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	res, err := s.Rotate(ctx, keys.RotateOptions{Grace: opts.Grace, Force: opts.Force, Revoke: opts.Revoke,
		Alg: alg, Bits: opts.Bits, DryRun: opts.DryRun})
	var ae *keys.AlgError
	if errors.As(err, &ae) {
		return &cmdutil.UsageError{Err: err}
	}
	if err != nil {
		return err
	}
	return renderResult(opts.IO, opts.Output, res)
}
