package key

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/golden"
	"github.com/microctl/microctl/pkg/keys"
)

// TestBadInput: flag combinations that can never work are usage errors
// (exit 2) found before anything is read, so these run with no Consul.
func TestBadInput(t *testing.T) {
	t.Setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1") // nothing listens: a read would fail differently
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"init", "--alg", "RS512"}, `unknown algorithm "RS512"`},
		{[]string{"init", "--alg", "none"}, `unknown algorithm "none"`},
		{[]string{"init", "--alg", "HS256"}, "--alg HS256 needs --legacy"},
		{[]string{"init", "--legacy", "--alg", "ES256"}, "--legacy is HS256"},
		{[]string{"init", "--alg", "RS256", "--bits", "1024"}, "RSA key size 1024"},
		{[]string{"init", "--bits", "4096"}, "--bits applies to RS256 only"},
		{[]string{"init", "--max-token-ttl", "0s"}, "must be positive"},
		{[]string{"init", "--path", "a//b"}, `path "a//b"`},
		{[]string{"init", "--path", "micro/config/jwt", "--legacy-path", "micro/config/jwt/key"}, "must not be under"},
		{[]string{"init", "--path", "microctl/keys"}, "microctl/ holds microctl's own"},
		{[]string{"rotate", "--revoke"}, "add --yes"},
		{[]string{"rotate", "--revoke", "--yes", "--grace", "1h"}, "do not mix"},
		{[]string{"rotate", "--grace", "-1h"}, "--grace must not be negative"},
		{[]string{"rotate", "--alg", "HS512"}, `unknown algorithm "HS512"`},
		{[]string{"rotate", "--bits", "1000"}, "RSA key size 1000"},
		{[]string{"rotate", "--wait", "-1s"}, "--wait must not be negative"},
		{[]string{"sign", "--ttl", "0s"}, "--ttl must be positive"},
		{[]string{"sign", "--claim", "novalue"}, "use key=value or key:=JSON"},
		{[]string{"sign", "--claim", "exp=1"}, "exp, iat and nbf are set from the clock"},
		{[]string{"sign", "--claim", "n:={bad"}, "must be JSON"},
		{[]string{"verify"}, "no token"},
		{[]string{"verify", "--leeway", "-1s", "x"}, "--leeway must not be negative"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := cmdtest.Exec(t, NewCmdKey, tt.args...)
			var ue *cmdutil.UsageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

func TestFlagsReachOptions(t *testing.T) {
	rf := &RingFlags{Path: "a/b", LegacyPath: keys.DefaultLegacyPath}
	got, err := cmdtest.Parse(t, func(f *cmdutil.Factory, runF func(context.Context, *RotateOptions) error) *cobra.Command {
		return NewCmdRotate(f, rf, runF)
	}, "--grace", "2h", "--force", "--alg", "es256", "--dry-run", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if got.Grace != 2*time.Hour || !got.Force || got.Alg != "es256" || !got.DryRun || !got.Output.JSON() || got.Ring.Path != "a/b" {
		t.Fatalf("options %+v", got)
	}
	sg, err := cmdtest.Parse(t, func(f *cmdutil.Factory, runF func(context.Context, *SignOptions) error) *cobra.Command {
		return NewCmdSign(f, rf, runF)
	}, "--sub", "alice", "--ttl", "5m", "--claim", "role=admin", "--claim", `tags:=["a"]`, "--claim", "url=http://x?a=b")
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := parseClaims(sg.Claims)
	if sg.Subject != "alice" || sg.TTL != 5*time.Minute || claims["role"] != "admin" || claims["url"] != "http://x?a=b" {
		t.Fatalf("sign options %+v claims %v", sg, claims)
	}
	if tags, ok := claims["tags"].([]any); !ok || tags[0] != "a" {
		t.Fatalf("JSON claim %v", claims["tags"])
	}
	ios, in, _, _ := cmdutil.Test()
	in.WriteString("  tok.from.stdin\n")
	vo, err := cmdtest.ParseWith(t, ios, func(f *cmdutil.Factory, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
		return NewCmdVerify(f, rf, runF)
	}, "-")
	if err != nil || vo.Token != "tok.from.stdin" {
		t.Fatalf("verify from stdin: %v %+v", err, vo)
	}
}

func TestKeyPathFromEnv(t *testing.T) {
	t.Setenv("MICROCTL_KEY_PATH", "env/ring")
	ios, _, _, _ := cmdutil.Test()
	root := NewCmdKey(cmdutil.NewFactory(ios))
	if got := root.PersistentFlags().Lookup("path").DefValue; got != "env/ring" {
		t.Fatalf("--path default = %q, want MICROCTL_KEY_PATH", got)
	}
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func TestRenderGolden(t *testing.T) {
	res := &keys.Result{Op: "rotate", Path: "micro/config/jwt", Changed: true, Generation: 4,
		Current: "CUR-kid", Next: "NEW-kid", Previous: "OLD-kid", Added: []string{"NEW-kid"}, Retired: []string{"OLDEST-kid"},
		Revoked: []string{}, Pruned: []string{}, GraceSeconds: 3600, RetireAfter: ptr(t0.Add(time.Hour)),
		AuditKey: "microctl/audit/micro/config/jwt/20250301T120000Z-rotate-g4",
		Warnings: []string{"legacy mode: micro/config/jwt-key now holds a new shared HS256 secret"}}
	for _, format := range []cmdutil.Format{cmdutil.FormatTable, cmdutil.FormatJSON} {
		ios, _, out, errOut := cmdutil.Test()
		if err := renderResult(ios, format, res); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "rotate."+string(format), out.Bytes())
		if !strings.HasPrefix(errOut.String(), "warning: legacy mode") {
			t.Errorf("warnings on stderr: %q", errOut)
		}
	}
	ring := ShowRing{Path: "micro/config/jwt", Alg: keys.EdDSA, Generation: 4, MaxTokenTTLSeconds: 3600, RotationPeriodSeconds: 2592000,
		UpdatedAt: t0, UpdatedBy: "ops@bastion", Keys: []ShowKey{
			{Key: keys.Key{Kid: "NEW-kid", Alg: keys.EdDSA, State: keys.Next, CreatedAt: t0}, AgeSeconds: 0, Verifiable: true},
			{Key: keys.Key{Kid: "CUR-kid", Alg: keys.EdDSA, State: keys.Current, CreatedAt: t0.Add(-24 * time.Hour), ActivatedAt: ptr(t0)}, AgeSeconds: 86400, Verifiable: true},
			{Key: keys.Key{Kid: "OLD-kid", Alg: keys.ES256, State: keys.Previous, CreatedAt: t0.Add(-48 * time.Hour), RetireAfter: ptr(t0.Add(time.Hour))}, AgeSeconds: 172800, Verifiable: true},
			{Key: keys.Key{Kid: "GONE-kid", Alg: keys.EdDSA, State: keys.Retired, CreatedAt: t0.Add(-96 * time.Hour), Revoked: true, RetiredAt: ptr(t0.Add(-time.Hour))}, AgeSeconds: 345600},
		}}
	for _, format := range []cmdutil.Format{cmdutil.FormatTable, cmdutil.FormatJSON} {
		ios, _, out, _ := cmdutil.Test()
		if err := renderShow(ios, format, ring); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "show."+string(format), out.Bytes())
	}
}

// TestShowFlagsUnsafeLegacySecret: a legacy ring whose secret go-config
// would mangle says so in the table and in -o json (never the secret).
func TestShowFlagsUnsafeLegacySecret(t *testing.T) {
	problem := keys.CheckLegacySecret("9yKcQ3hzbn5x1Dk2TzYw0w8e6Ksz2m1Pq4r5s6t7u8v").Error()
	ring := ShowRing{Path: "micro/config/jwt", Alg: keys.HS256, Generation: 1, MaxTokenTTLSeconds: 3600, LegacyPath: keys.DefaultLegacyPath,
		UpdatedAt: t0, Keys: []ShowKey{}, Legacy: &keys.LegacyStatus{Path: keys.DefaultLegacyPath, Present: true, Readable: true, Matches: true, Problem: problem}}
	ios, _, out, _ := cmdutil.Test()
	if err := renderShow(ios, cmdutil.FormatTable, ring); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "legacy secret at micro/config/jwt-key: "+problem) {
		t.Fatalf("table:\n%s", out)
	}
	ios, _, out, _ = cmdutil.Test()
	if err := renderShow(ios, cmdutil.FormatJSON, ring); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"safe": false`) || !strings.Contains(out.String(), `"matches_current": true`) {
		t.Fatalf("json:\n%s", out)
	}
}
