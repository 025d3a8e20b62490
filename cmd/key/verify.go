package key

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// VerifyOptions are the inputs of `microctl key verify`.
type VerifyOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags
	Now    func() time.Time

	Output cmdutil.Format
	Token  string
	Leeway time.Duration
}

// NewCmdVerify builds `key verify`.
func NewCmdVerify(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "verify [TOKEN|-]",
		Short: "Verify a token against the ring, as a gateway would",
		Long: `Verify a JWT the way a gateway using pkg/keys does: the header's kid must
name a key of the ring that is not retired and its alg must be that key's
(alg none is never accepted), the signature must hold, exp is required and
exp, nbf and iat are checked with --leeway. Prints which key verified it.

The token comes from the argument, or from stdin with "-" or no argument
(keeps it out of shell history).

Exit codes: 0 valid, 3 rejected (the reason on stderr), 1 could not check.`,
		Example: `  microctl key verify "$TOKEN"
  microctl key sign --sub alice | microctl key verify -
  microctl key verify -o json - < token.txt`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.Leeway < 0 {
				return cmdutil.Usagef("--leeway must not be negative")
			}
			if len(args) == 1 && args[0] != "-" {
				opts.Token = args[0]
			} else {
				b, err := io.ReadAll(bufio.NewReader(io.LimitReader(opts.IO.In, 1<<20)))
				if err != nil {
					return err
				}
				opts.Token = strings.TrimSpace(string(b))
			}
			if opts.Token == "" {
				return cmdutil.Usagef("no token: pass it as the argument or on stdin")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runVerify(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().DurationVar(&opts.Leeway, "leeway", keys.DefaultLeeway, "clock skew tolerated on exp, nbf and iat")
	return cmd
}

// verifyOutput is `key verify -o json`.
type verifyOutput struct {
	Valid    bool   `json:"valid"`
	Reason   string `json:"reason,omitempty"`
	Kid      string `json:"kid,omitempty"`
	KeyState string `json:"key_state,omitempty"`
	*keys.Verified
}

func runVerify(ctx context.Context, opts *VerifyOptions) error {
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	ks, ring, err := s.KeySet(ctx)
	if err != nil {
		return err
	}
	v, verr := ks.Verify(opts.Token, opts.Now(), opts.Leeway)
	var rej *keys.RejectedError
	if verr != nil && !errors.As(verr, &rej) {
		return verr
	}
	out := verifyOutput{Valid: verr == nil, Verified: v}
	if rej != nil {
		out.Reason, out.Kid = rej.Error(), rej.Kid
	} else {
		out.Kid = v.Kid
	}
	k := ring.Find(out.Kid)
	if k != nil {
		out.KeyState = string(k.State)
	}
	if opts.Output.JSON() {
		if err := cmdutil.PrintJSON(opts.IO.Out, out); err != nil {
			return err
		}
	} else if v != nil {
		t := cmdutil.NewTable(opts.IO.Out)
		t.Row("valid", "yes")
		t.Row("kid", fmt.Sprintf("%s (%s, %s)", v.Kid, v.Alg, out.KeyState))
		if v.Subject != "" {
			t.Row("subject", v.Subject)
		}
		if v.IssuedAt != nil {
			t.Row("issued", v.IssuedAt.UTC().Format(time.RFC3339))
		}
		t.Row("expires", fmt.Sprintf("%s (in %s)", v.ExpiresAt.UTC().Format(time.RFC3339), keys.HumanDuration(v.ExpiresAt.Sub(opts.Now()))))
		if err := t.Flush(); err != nil {
			return err
		}
	}
	if rej != nil {
		msg := rej.Error()
		switch {
		case k != nil && k.Revoked && k.RetiredAt != nil:
			msg += fmt.Sprintf(" (key %s was revoked at %s)", k.Kid, k.RetiredAt.UTC().Format(time.RFC3339))
		case k != nil:
			msg += fmt.Sprintf(" (key %s is %s)", k.Kid, k.State)
		}
		return cmdutil.Unhealthy("%s", msg)
	}
	return nil
}
