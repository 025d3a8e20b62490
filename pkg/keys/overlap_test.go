package keys

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/doctor"
)

// TestOverlappingRingsRefused: a ring cannot be made inside or around
// another ring's keys, nor a legacy path inside a ring, and the existing
// ring stays rotatable.
func TestOverlappingRingsRefused(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	outer := newStore(t, c, clk, WithPath("ov/config/jwt"))
	if _, err := outer.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, legacy string
		wantIn             string
	}{
		{"inside private", "ov/config/jwt/private", "", "inside the key ring at ov/config/jwt"},
		{"inside", "ov/config/jwt/sub", "", "inside the key ring at ov/config/jwt"},
		{"around", "ov/config", "", "around the key ring at ov/config/jwt"},
		{"around root", "ov", "", "around the key ring at ov/config/jwt"},
		{"legacy inside", "ov/config/jwt2", "ov/config/jwt/private/x", "legacy path ov/config/jwt/private/x is inside the key ring at ov/config/jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []Option{WithPath(tc.path)}
			if tc.legacy != "" {
				opts = append(opts, WithLegacyPath(tc.legacy))
			}
			s := newStore(t, c, clk, opts...)
			_, err := s.Init(ctx, InitOptions{Legacy: tc.legacy != ""})
			var ov *OverlapError
			if !errors.As(err, &ov) || !strings.Contains(err.Error(), tc.wantIn) || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("init %s: err = %v, want an OverlapError saying %q", tc.path, err, tc.wantIn)
			}
			if l, _ := c.KVList(ctx, tc.path+"/ring"); len(l.Entries) > 0 && tc.path != "ov/config" && tc.path != "ov" {
				t.Fatalf("init %s wrote %s", tc.path, l.Entries[0].Key)
			}
		})
	}
	// The outer ring is still whole and rotates; a sibling path is fine.
	if _, err := outer.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatalf("outer ring after the refused inits: %v", err)
	}
	if _, err := newStore(t, c, clk, WithPath("ov/config/jwt-b")).Init(ctx, InitOptions{}); err != nil {
		t.Fatalf("a sibling ring: %v", err)
	}
	if _, err := outer.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatalf("outer ring next to a sibling: %v", err)
	}
}

// TestBrokenRing: a ring whose current private key was deleted is reported
// as broken (Health, Signer, Prune), and a rotation, plain or --revoke, is
// the way out.
func TestBrokenRing(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	for _, revoke := range []bool{false, true} {
		name := map[bool]string{false: "rotate", true: "revoke"}[revoke]
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			s := newStore(t, c, clk, WithPath("broken/"+name))
			if _, err := s.Init(ctx, InitOptions{MaxTokenTTL: time.Hour}); err != nil {
				t.Fatal(err)
			}
			tok, err := s.Sign(ctx, SignOptions{TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.API.KV().Delete(s.PrivateKey(tok.Kid), nil); err != nil {
				t.Fatal(err)
			}
			ring, _ := s.Ring(ctx)
			h, err := s.Health(ctx, ring)
			if err != nil || h.Broken != tok.Kid || h.Unknown != "" {
				t.Fatalf("health = %+v, %v", h, err)
			}
			for _, r := range Probe(s)(ctx) {
				if r.Check == "keys.ring" && (r.Status != doctor.Fail || !strings.Contains(r.Detail, "is broken")) {
					t.Fatalf("doctor on a broken ring: %+v", r)
				}
			}
			var broken *BrokenError
			if _, err := s.Sign(ctx, SignOptions{TTL: time.Minute}); !errors.As(err, &broken) || broken.Kid != tok.Kid {
				t.Fatalf("sign on a broken ring: %v", err)
			}
			res, err := s.Prune(ctx, PruneOptions{})
			if err != nil || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "is broken") {
				t.Fatalf("prune on a broken ring: %+v, %v", res, err)
			}
			res, err = s.Rotate(ctx, RotateOptions{Revoke: revoke})
			if err != nil {
				t.Fatalf("the way out: %v", err)
			}
			ring, _ = s.Ring(ctx)
			if h, _ := s.Health(ctx, ring); h.Broken != "" {
				t.Fatalf("still broken after %s: %+v", name, h)
			}
			if _, err := s.Sign(ctx, SignOptions{TTL: time.Minute}); err != nil {
				t.Fatalf("sign after %s: %v", name, err)
			}
			ks := keyset(t, s)
			if revoke {
				mustReject(t, ks, tok.Token, clk.Now(), ErrUnknownKid) // out of the JWKS at once
			} else {
				// The public half stayed in the JWKS: tokens the broken
				// key signed keep verifying for the grace.
				mustVerify(t, ks, tok.Token, clk.Now())
				if res.Previous != tok.Kid {
					t.Fatalf("previous = %s, want %s", res.Previous, tok.Kid)
				}
			}
			if _, err := s.Load(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSignTTLBeyondPolicy: a --ttl longer than the rotation period changes
// the ring only with Force.
func TestSignTTLBeyondPolicy(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	s := newStore(t, c, newClock())
	if _, err := s.Init(ctx, InitOptions{MaxTokenTTL: time.Hour, RotationPeriod: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Ring(ctx)
	var pe *TTLPolicyError
	if _, err := s.Sign(ctx, SignOptions{TTL: 100000 * time.Hour}); !errors.As(err, &pe) {
		t.Fatalf("sign 100000h: %v", err)
	}
	after, _ := s.Ring(ctx)
	if after.Generation != before.Generation || after.IssuedMaxTTL != before.IssuedMaxTTL {
		t.Fatalf("a refused sign changed the ring: generation %d -> %d", before.Generation, after.Generation)
	}
	// Within the period: recorded as before.
	if tok, err := s.Sign(ctx, SignOptions{TTL: 3 * time.Hour}); err != nil || !tok.RecordedTTL {
		t.Fatalf("sign 3h: %+v, %v", tok, err)
	}
	if tok, err := s.Sign(ctx, SignOptions{TTL: 100000 * time.Hour, Force: true}); err != nil || !tok.RecordedTTL {
		t.Fatalf("forced: %+v, %v", tok, err)
	}
	if r, _ := s.Ring(ctx); r.IssuedMaxTTL != 100000*3600 {
		t.Fatalf("issued max ttl = %d", r.IssuedMaxTTL)
	}
}
