package key

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// SealOptions are the inputs of `microctl key seal` and `key rekey`.
type SealOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output     cmdutil.Format
	NewKEKFile string
	DryRun     bool
}

// NewCmdSeal builds `key seal`.
func NewCmdSeal(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *SealOptions) error) *cobra.Command {
	opts := &SealOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Encrypt every private key of the ring under a key-encryption key (KEK)",
		Long: `Seal a plaintext ring: every private key in KV is replaced by its
AES-256-GCM encryption under the KEK in --kek-file (or MICROCTL_KEK_FILE),
with the kid and the ring's path as additional data, in one fenced
transaction with the ring (all sealed, or nothing changed). From then on
every command that reads a private key (sign, rotate, rollback, prune, the
rotator) needs the same KEK; without it they say so and change nothing.

Make a KEK with:  openssl rand -base64 32 > kek && chmod 600 kek
Keep it outside Consul (a Docker secret, a file only the operator reads).

Legacy HS256 rings cannot be sealed: the seed's gateway reads the shared
secret raw from the legacy path.`,
		Example: `  openssl rand -base64 32 > /etc/microctl/kek
  microctl key seal --kek-file /etc/microctl/kek
  MICROCTL_KEK_FILE=/etc/microctl/kek microctl key rotate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if rf.KEKFile == "" {
				return cmdutil.Usagef("key seal needs --kek-file (or MICROCTL_KEK_FILE)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			s, err := opts.Ring.store(opts.Consul)
			if err != nil {
				return err
			}
			res, err := s.Seal(cmd.Context(), keys.SealOptions{DryRun: opts.DryRun})
			if err != nil {
				return err
			}
			return renderResult(opts.IO, opts.Output, res)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check that every key opens and would be sealed; write nothing")
	return cmd
}

// NewCmdRekey builds `key rekey`.
func NewCmdRekey(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *SealOptions) error) *cobra.Command {
	opts := &SealOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "rekey",
		Short: "Re-seal every private key of a sealed ring under a new KEK",
		Long: `Re-seal a sealed ring under a new key-encryption key: every private key is
opened with --kek-file and sealed again under --new-kek-file, in one fenced
transaction with the ring. Afterwards only the new KEK opens the ring:
update every place that holds the old one (the rotator's Docker secret:
microctl key schedule again) before destroying it.`,
		Example: `  openssl rand -base64 32 > kek.new
  microctl key rekey --kek-file kek --new-kek-file kek.new`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if rf.KEKFile == "" || opts.NewKEKFile == "" {
				return cmdutil.Usagef("key rekey needs --kek-file (the current KEK) and --new-kek-file")
			}
			newKEK, err := keys.ReadKEKFile(opts.NewKEKFile)
			if err != nil {
				return cmdutil.Usagef("--new-kek-file %v", err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			s, err := opts.Ring.store(opts.Consul)
			if err != nil {
				return err
			}
			res, err := s.Rekey(cmd.Context(), newKEK, keys.SealOptions{DryRun: opts.DryRun})
			if err != nil {
				return err
			}
			return renderResult(opts.IO, opts.Output, res)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().StringVar(&opts.NewKEKFile, "new-kek-file", "", "file holding the new KEK (openssl rand -base64 32)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "check that every key opens; write nothing")
	return cmd
}
