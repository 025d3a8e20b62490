package key

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// SignOptions are the inputs of `microctl key sign`.
type SignOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Output  cmdutil.Format
	Subject string
	TTL     time.Duration
	Claims  []string
	Force   bool
}

// NewCmdSign builds `key sign`.
func NewCmdSign(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *SignOptions) error) *cobra.Command {
	opts := &SignOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Sign a token with the current key (for tests and load tests)",
		Long: `Sign a JWT with the ring's current key and print the token, and nothing
else, on stdout. iat and nbf are now, exp is now + --ttl, jti is random;
the header carries the kid.

--claim k=v adds a string claim; --claim k:=JSON adds a JSON value
(number, boolean, array, object). exp, iat and nbf cannot be set by hand.

A --ttl longer than any the ring has covered is first recorded in the ring
(a locked write, so this needs write access), and rotations keep keys
verifiable at least that long from then on. A --ttl longer than the ring's
rotation period is refused unless --force.

Needs read access to <path>/ring and <path>/private/<current kid>.`,
		Example: `  microctl key sign --sub alice
  microctl key sign --sub bench --ttl 1h --claim role=admin --claim 'scopes:=["read","write"]'
  curl -H "Authorization: Bearer $(microctl key sign --sub alice)" http://127.0.0.1:8080/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if opts.TTL <= 0 {
				return cmdutil.Usagef("--ttl must be positive")
			}
			if _, err := parseClaims(opts.Claims); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSign(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.StringVar(&opts.Subject, "sub", "", "subject (sub claim)")
	fl.DurationVar(&opts.TTL, "ttl", keys.DefaultTokenTTL, "token lifetime")
	fl.StringArrayVar(&opts.Claims, "claim", nil, "extra claim k=v (string) or k:=JSON; repeatable")
	fl.BoolVar(&opts.Force, "force", false, "accept a --ttl longer than the ring's rotation period (raises the grace of every later rotation)")
	return cmd
}

// parseClaims reads k=v (a string) and k:=JSON (any JSON value).
func parseClaims(in []string) (map[string]any, error) {
	out := map[string]any{}
	for _, c := range in {
		if k, v, ok := strings.Cut(c, ":="); ok && k != "" && !strings.Contains(k, "=") {
			var val any
			if err := json.Unmarshal([]byte(v), &val); err != nil {
				return nil, cmdutil.Usagef("--claim %s: the value after := must be JSON: %v", c, err)
			}
			out[k] = val
			continue
		}
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" {
			return nil, cmdutil.Usagef("--claim %q: use key=value or key:=JSON", c)
		}
		out[k] = v
	}
	for _, k := range []string{"exp", "iat", "nbf"} {
		if _, ok := out[k]; ok {
			return nil, cmdutil.Usagef("--claim %s: exp, iat and nbf are set from the clock and --ttl", k)
		}
	}
	return out, nil
}

// signOutput is `key sign -o json`.
type signOutput struct {
	Token string `json:"token"`
	*keys.Signed
}

func runSign(ctx context.Context, opts *SignOptions) error {
	claims, err := parseClaims(opts.Claims)
	if err != nil {
		return err
	}
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	tok, err := s.Sign(ctx, keys.SignOptions{Subject: opts.Subject, TTL: opts.TTL, Claims: claims, Force: opts.Force})
	if err != nil {
		return err
	}
	if tok.RecordedTTL {
		fmt.Fprintf(opts.IO.ErrOut, "note: recorded %s as the longest token lifetime issued; rotations now keep keys verifiable at least that long\n", opts.TTL)
	}
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, signOutput{Token: tok.Token, Signed: tok})
	}
	_, err = fmt.Fprintln(opts.IO.Out, tok.Token)
	return err
}
