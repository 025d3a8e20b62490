package key

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// ShowOptions are the inputs of `microctl key show`.
type ShowOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags
	Now    func() time.Time

	Output cmdutil.Format
	JWKS   bool
}

// NewCmdShow builds `key show`.
func NewCmdShow(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show the ring's keys: kid, alg, state, age, retire_after (public facts only)",
		Long: `Show the keys of the ring: kid, algorithm, state, age and, for previous
keys, until when they verify. Only public facts: show reads <path>/ring (and
<path>/jwks with --jwks), never a private key, so a gateway's read-only token
can run it.

--jwks prints the public JWKS that gateways verify with, as stored.`,
		Example: `  microctl key show
  microctl key show -o json | jq -r '.keys[] | select(.state == "current") | .kid'
  microctl key show --jwks > jwks.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runShow(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.JWKS, "jwks", false, "print the public JWKS document")
	return cmd
}

// ShowKey is one key in `key show -o json`.
type ShowKey struct {
	keys.Key
	AgeSeconds int64 `json:"age_seconds"`
	Verifiable bool  `json:"verifiable"`
}

// ShowRing is `key show -o json`.
type ShowRing struct {
	Path                  string    `json:"path"`
	Alg                   keys.Alg  `json:"alg"`
	Generation            int64     `json:"generation"`
	MaxTokenTTLSeconds    int64     `json:"max_token_ttl_seconds"`
	IssuedMaxTTLSeconds   int64     `json:"issued_max_ttl_seconds"`
	RotationPeriodSeconds int64     `json:"rotation_period_seconds"`
	LegacyPath            string    `json:"legacy_path,omitempty"`
	UpdatedAt             time.Time `json:"updated_at"`
	UpdatedBy             string    `json:"updated_by,omitempty"`
	Keys                  []ShowKey `json:"keys"`
	// Legacy is what the legacy path holds, in legacy mode.
	Legacy *keys.LegacyStatus `json:"legacy,omitempty"`
	// Broken names the current key when its private key is missing;
	// MissingPrivate every key without one (see keys.Health).
	Broken         string   `json:"broken,omitempty"`
	Sealed         string   `json:"sealed,omitempty"` // the KEK id`
	MissingPrivate []string `json:"missing_private,omitempty"`
}

var stateOrder = map[keys.State]int{keys.Next: 0, keys.Current: 1, keys.Previous: 2, keys.Retired: 3}

func runShow(ctx context.Context, opts *ShowOptions) error {
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	if opts.JWKS {
		doc, err := s.JWKSDoc(ctx)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err = opts.IO.Out.Write(buf.Bytes())
		return err
	}
	ring, err := s.Ring(ctx)
	if err != nil {
		return err
	}
	now := opts.Now()
	out := ShowRing{Path: s.Path(), Alg: ring.Alg, Generation: ring.Generation,
		MaxTokenTTLSeconds: int64(ring.MaxTokenTTL), IssuedMaxTTLSeconds: int64(ring.IssuedMaxTTL),
		RotationPeriodSeconds: int64(ring.RotationPeriod), LegacyPath: ring.LegacyPath,
		UpdatedAt: ring.UpdatedAt, UpdatedBy: ring.UpdatedBy, Keys: []ShowKey{}}
	for _, st := range []keys.State{keys.Next, keys.Current, keys.Previous, keys.Retired} {
		for _, k := range ring.InState(st) {
			out.Keys = append(out.Keys, ShowKey{Key: *k, AgeSeconds: int64(now.Sub(k.CreatedAt).Seconds()), Verifiable: k.Verifiable(now)})
		}
	}
	if ring.LegacyPath != "" {
		st, err := s.LegacyStatus(ctx, ring)
		if err != nil {
			st = &keys.LegacyStatus{Path: ring.LegacyPath, Problem: "cannot be read: " + err.Error()}
		}
		out.Legacy = st
	}
	h, err := s.Health(ctx, ring)
	if err != nil {
		return err
	}
	out.Broken, out.MissingPrivate, out.Sealed = h.Broken, h.Missing, ring.Sealed
	if w := h.Warning(s.Path()); w != "" {
		opts.IO.Warnf("%s", w)
	}
	return renderShow(opts.IO, opts.Output, out)
}

func renderShow(io *cmdutil.IOStreams, format cmdutil.Format, out ShowRing) error {
	if format.JSON() {
		return cmdutil.PrintJSON(io.Out, out)
	}
	maxTTL := time.Duration(max(out.MaxTokenTTLSeconds, out.IssuedMaxTTLSeconds)) * time.Second
	fmt.Fprintf(io.Out, "key ring at %s: generation %d, max token TTL %s, updated %s by %s\n",
		out.Path, out.Generation, maxTTL, out.UpdatedAt.Format(time.RFC3339), out.UpdatedBy)
	if out.LegacyPath != "" {
		fmt.Fprintf(io.Out, "legacy mode: the current HS256 secret is mirrored to %s\n", out.LegacyPath)
		if l := out.Legacy; l != nil && l.Problem != "" {
			fmt.Fprintf(io.Out, "legacy secret at %s: %s (microctl key rotate fixes it)\n", l.Path, l.Problem)
		}
	}
	if out.Sealed != "" {
		fmt.Fprintf(io.Out, "sealed: private keys are encrypted under KEK id %s (signing and changes need --kek-file)\n", out.Sealed)
	}
	if out.Broken != "" {
		fmt.Fprintf(io.Out, "BROKEN: the current key %s has no private key; nothing can sign until microctl key rotate\n", out.Broken)
	}
	fmt.Fprintln(io.Out)
	t := cmdutil.NewTable(io.Out, "KID", "ALG", "STATE", "AGE", "VERIFIES UNTIL")
	for _, k := range out.Keys {
		until := "-"
		switch {
		case k.State == keys.Retired && k.Revoked:
			until = "revoked " + k.RetiredAt.Format(time.RFC3339)
		case k.State == keys.Retired:
			until = "retired"
		case k.RetireAfter != nil:
			until = k.RetireAfter.Format(time.RFC3339)
			if !k.Verifiable {
				until += " (past: key prune drops it)"
			}
		}
		t.Row(k.Kid, string(k.Alg), string(k.State), keys.HumanDuration(time.Duration(k.AgeSeconds)*time.Second), until)
	}
	return t.Flush()
}
