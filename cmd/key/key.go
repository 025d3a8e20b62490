// Package key implements `microctl key`: the JWT signing key ring in
// Consul KV (init, rotate, show, sign, verify, prune, rollback).
package key

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// RingFlags are the flags every key command shares: where the ring is and
// how long to wait for another operator's lock.
type RingFlags struct {
	Path       string
	LegacyPath string
	Wait       time.Duration
	// KEKFile holds the key-encryption key of a sealed ring (seal.go).
	KEKFile string
	// AuditKeep deletes older audit records on every write (audit.go).
	AuditKeep time.Duration
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// NewCmdKey builds the `key` group.
func NewCmdKey(f *cmdutil.Factory) *cobra.Command {
	rf := &RingFlags{}
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the JWT signing key ring in Consul KV",
		Long: `Manage the JWT signing key ring that gateways verify tokens with, kept in
Consul KV. A key goes next -> current -> previous -> retired: a next key is
published in the JWKS one rotation before it signs, so every gateway knows
it in time; a previous key keeps verifying tokens until its retire_after,
at least the longest token lifetime after it stopped signing. Rotating
therefore breaks no token in flight.

Layout under --path (every value a JSON object, so go-config can read the
prefix):
  <path>/ring           public facts: kids, states, times, policy
  <path>/jwks           public JWKS of every verifiable key (what gateways read)
  <path>/private/<kid>  private keys, PKCS#8 PEM (deny this to gateways' tokens)
Locks and audit records live outside it, under microctl/locks/<path> and
microctl/audit/<path>/.

Every change takes a Consul session lock and is written in one transaction
that checks the lock (fencing) and every value's ModifyIndex, then read back.

Environment: MICROCTL_KEY_PATH (default for --path), and the CONSUL_*
variables for the connection (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, ...).`,
		Example: `  microctl key init
  microctl key rotate
  microctl key show
  TOKEN=$(microctl key sign --sub alice --ttl 10m)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&rf.Path, "path", keys.PathFromEnv(), "KV path of the key ring (env MICROCTL_KEY_PATH)")
	pf.StringVar(&rf.LegacyPath, "legacy-path", keys.DefaultLegacyPath, `KV key legacy mode keeps {"key": secret} at`)
	pf.DurationVar(&rf.Wait, "wait", keys.DefaultLockWait, "how long a change waits for another operator's lock (0: do not wait)")
	addProductionFlags(pf, rf)
	cmd.AddCommand(
		NewCmdInit(f, rf, nil),
		NewCmdRotate(f, rf, nil),
		NewCmdShow(f, rf, nil),
		NewCmdSign(f, rf, nil),
		NewCmdVerify(f, rf, nil),
		NewCmdPrune(f, rf, nil),
		NewCmdRollback(f, rf, nil),
	)
	addProductionCommands(cmd, f, rf)
	return cmd
}

// store builds the ring's store from the flags.
func (rf *RingFlags) store(consul func() (*registry.Client, error)) (*keys.Store, error) {
	c, err := consul()
	if err != nil {
		return nil, err
	}
	kek, err := rf.kek()
	if err != nil {
		return nil, err
	}
	s, err := keys.NewStore(c, keys.WithPath(rf.Path), keys.WithLegacyPath(rf.LegacyPath), keys.WithLockWait(rf.Wait), keys.WithKEK(kek), keys.WithAuditKeep(rf.AuditKeep))
	if err != nil {
		return nil, cmdutil.Usagef("%v", err)
	}
	return s, nil
}

func (rf *RingFlags) validate() error {
	if rf.Wait < 0 {
		return cmdutil.Usagef("--wait must not be negative")
	}
	if _, err := keys.NewStore(nil, keys.WithPath(rf.Path), keys.WithLegacyPath(rf.LegacyPath)); err != nil {
		return cmdutil.Usagef("%v", err)
	}
	return nil
}

func parseAlg(s string) (keys.Alg, error) {
	if s == "" {
		return "", nil
	}
	a, err := keys.ParseAlg(s)
	if err != nil {
		return "", cmdutil.Usagef("--alg: %v", err)
	}
	return a, nil
}

// renderResult prints what a change did: warnings on stderr, the result on
// stdout (a few aligned lines, or the Result as JSON).
func renderResult(io *cmdutil.IOStreams, format cmdutil.Format, res *keys.Result) error {
	for _, w := range res.Warnings {
		io.Warnf("%s", w)
	}
	if format.JSON() {
		return cmdutil.PrintJSON(io.Out, res)
	}
	verb := map[string]string{"init": "initialised", "rotate": "rotated", "rollback": "rolled back", "prune": "pruned", "seal": "sealed", "rekey": "re-sealed"}[res.Op]
	switch {
	case res.DryRun:
		fmt.Fprintf(io.Out, "dry run: would have %s the key ring at %s (generation %d); nothing was written\n", verb, res.Path, res.Generation)
	case !res.Changed:
		fmt.Fprintf(io.Out, "nothing to do: the key ring at %s is unchanged\n", res.Path)
	default:
		fmt.Fprintf(io.Out, "%s the key ring at %s (generation %d)\n", verb, res.Path, res.Generation)
	}
	t := cmdutil.NewTable(io.Out)
	if res.Current != "" {
		t.Row("current", res.Current)
	}
	if res.Next != "" {
		t.Row("next", res.Next)
	}
	for _, k := range res.Added {
		if k != res.Current && k != res.Next {
			t.Row("new key", k)
		}
	}
	if res.Previous != "" && res.RetireAfter != nil {
		t.Row("previous", fmt.Sprintf("%s verifies until %s (grace %s)", res.Previous, res.RetireAfter.UTC().Format(time.RFC3339), time.Duration(res.GraceSeconds)*time.Second))
	}
	for _, k := range res.Retired {
		t.Row("retired", k)
	}
	for _, k := range res.Revoked {
		t.Row("revoked", k)
	}
	for _, k := range res.Pruned {
		t.Row("dropped", k)
	}
	if res.Legacy != "" {
		t.Row("legacy", res.Legacy)
	}
	if res.AuditKey != "" {
		t.Row("audit", res.AuditKey)
	}
	return t.Flush()
}
