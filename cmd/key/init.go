package key

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// InitOptions are the inputs of `microctl key init`.
type InitOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output         cmdutil.Format
	Alg            string
	Bits           int
	MaxTokenTTL    time.Duration
	RotationPeriod time.Duration
	Legacy         bool
	DryRun         bool
}

// NewCmdInit builds `key init`.
func NewCmdInit(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the key ring: a current key and a next key",
		Long: `Create the key ring at --path: a current key that signs at once, and a next
key already published in the JWKS so that the first rotation signs with a key
every gateway knows. Fails if a ring is already there.

--max-token-ttl is the longest lifetime of a token signed from this ring; a
rotation keeps the outgoing key verifiable at least that long. key sign
records longer TTLs it issues, so the grace always covers them.

--legacy is for gateways like the seed's that verify HS256 with one shared
secret read from --legacy-path ({"key": "..."}): the ring holds HS256 keys
and every change also writes the current secret there. A secret already at
--legacy-path is adopted as the current key, so tokens issued with it keep
working. Rotating a shared secret invalidates every outstanding token at
such gateways; microctl says so each time.`,
		Example: `  microctl key init
  microctl key init --alg RS256 --bits 3072 --max-token-ttl 15m
  microctl key init --legacy          # the seed's gateway (micro/config/jwt-key)
  microctl key init --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Legacy && rf.KEKFile != "" {
				return cmdutil.Usagef("--kek-file with --legacy: %v", keys.ErrLegacySeal)
			}
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.MaxTokenTTL <= 0 || opts.RotationPeriod <= 0 {
				return cmdutil.Usagef("--max-token-ttl and --rotation-period must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.StringVar(&opts.Alg, "alg", "", "signing algorithm: EdDSA (default), ES256, RS256; HS256 with --legacy")
	fl.IntVar(&opts.Bits, "bits", 0, "RSA key size for RS256: 2048 (default), 3072 or 4096")
	fl.DurationVar(&opts.MaxTokenTTL, "max-token-ttl", keys.DefaultMaxTokenTTL, "longest lifetime of a token signed from this ring")
	fl.DurationVar(&opts.RotationPeriod, "rotation-period", keys.DefaultRotationPeriod, "how old the current key may get before doctor warns")
	fl.BoolVar(&opts.Legacy, "legacy", false, "HS256 shared secret, also written to --legacy-path for gateways like the seed's")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would be created; write nothing")
	return cmd
}

func runInit(ctx context.Context, opts *InitOptions) error {
	alg, err := parseAlg(opts.Alg)
	if err != nil {
		return err
	}
	if err := checkAlgFlags(alg, opts.Bits, opts.Legacy); err != nil {
		return err
	}
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	res, err := s.Init(ctx, keys.InitOptions{Alg: alg, Bits: opts.Bits, MaxTokenTTL: opts.MaxTokenTTL,
		RotationPeriod: opts.RotationPeriod, Legacy: opts.Legacy, DryRun: opts.DryRun})
	if err != nil {
		return err
	}
	return renderResult(opts.IO, opts.Output, res)
}

// checkAlgFlags turns flag combinations that can never work into usage
// errors before anything is read.
func checkAlgFlags(alg keys.Alg, bits int, legacy bool) error {
	if alg == keys.HS256 && !legacy {
		return cmdutil.Usagef("--alg HS256 needs --legacy: a shared secret cannot be published in a JWKS")
	}
	if legacy && alg != "" && alg != keys.HS256 {
		return cmdutil.Usagef("--legacy is HS256 (one shared secret), not %s", alg)
	}
	a := alg
	if a == "" {
		a = keys.EdDSA
		if legacy {
			a = keys.HS256
		}
	}
	if err := keys.ValidateBits(a, bits); err != nil {
		return cmdutil.Usagef("%v", err)
	}
	return nil
}
