package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// clock is a settable clock shared by the stores and verifiers of a test,
// so a test can jump past a retire_after without waiting for it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newStore(t *testing.T, c Backend, clk *clock, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{WithClock(clk.Now), WithActor("tester@test")}, opts...)
	s, err := NewStore(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goConfigRead reads everything under prefix the way go-config's Consul
// source does: every value must decode as a JSON object, or the whole read
// fails. It fails the test naming the key that would break it.
func goConfigRead(t *testing.T, c *registry.Client, prefix string) map[string]map[string]any {
	t.Helper()
	l, err := c.KVList(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, e := range l.Entries {
		var v map[string]any
		if err := json.Unmarshal(e.Value, &v); err != nil || v == nil {
			t.Fatalf("go-config would fail the whole read of %s: %s is not a JSON object: %q", prefix, e.Key, e.Value)
		}
		out[e.Key] = v
	}
	return out
}

func mustVerify(t *testing.T, ks *KeySet, tok string, at time.Time) {
	t.Helper()
	if _, err := ks.Verify(tok, at, DefaultLeeway); err != nil {
		t.Fatalf("token rejected at %s: %v", at.Format(time.RFC3339), err)
	}
}

func mustReject(t *testing.T, ks *KeySet, tok string, at time.Time, want error) {
	t.Helper()
	if _, err := ks.Verify(tok, at, DefaultLeeway); !errors.Is(err, want) {
		t.Fatalf("verify at %s: err = %v, want %v", at.Format(time.RFC3339), err, want)
	}
}

func keyset(t *testing.T, s *Store) *KeySet {
	t.Helper()
	ks, _, err := s.KeySet(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	clk := newClock()
	ctx := ctxT(t)
	for _, alg := range []Alg{EdDSA, ES256, RS256} {
		t.Run(string(alg), func(t *testing.T) {
			s := newStore(t, c, clk, WithPath("micro/config/jwt-"+strings.ToLower(string(alg))))
			check := func(op string) {
				t.Helper()
				goConfigRead(t, c, "micro/config/")
				if _, err := s.Load(ctx); err != nil {
					t.Fatalf("after %s: %v", op, err)
				}
			}
			if _, err := s.Ring(ctx); !errors.As(err, new(*NoRingError)) {
				t.Fatalf("no ring yet: err = %v", err)
			}
			res, err := s.Init(ctx, InitOptions{Alg: alg, MaxTokenTTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			check("init")
			if res.Current == "" || res.Next == "" || len(res.Added) != 2 || res.Generation != 1 || !res.Changed {
				t.Fatalf("init result %+v", res)
			}
			if _, err := s.Init(ctx, InitOptions{Alg: alg}); !errors.As(err, new(*RingExistsError)) {
				t.Fatalf("second init: %v", err)
			}

			tok0, err := s.Sign(ctx, SignOptions{Subject: "before", TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if tok0.Kid != res.Current {
				t.Fatalf("signed with %s, current is %s", tok0.Kid, res.Current)
			}
			mustVerify(t, keyset(t, s), tok0.Token, clk.Now())

			// Rotate: next becomes current, current stays verifiable.
			rot, err := s.Rotate(ctx, RotateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check("rotate")
			if rot.Current != res.Next || rot.RetireAfter == nil || !rot.RetireAfter.Equal(clk.Now().Add(time.Hour)) {
				t.Fatalf("rotate result %+v", rot)
			}
			tok1, err := s.Sign(ctx, SignOptions{Subject: "after", TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if tok1.Kid != rot.Current {
				t.Fatalf("signed with %s after rotation, want %s", tok1.Kid, rot.Current)
			}
			clk.Advance(30 * time.Minute)
			ks := keyset(t, s)
			mustVerify(t, ks, tok0.Token, clk.Now())
			mustVerify(t, ks, tok1.Token, clk.Now())
			// tok1 expires at +60m; the checks after +61m need a token of
			// the same key that is still valid then.
			tok1, _ = s.Sign(ctx, SignOptions{Subject: "after", TTL: time.Hour})

			// Past retire_after the old key verifies nothing, even before
			// anything is written; the next rotation retires it and prune
			// drops it.
			clk.Advance(31 * time.Minute)
			mustReject(t, keyset(t, s), tok0.Token, clk.Now(), ErrRetired)
			rot2, err := s.Rotate(ctx, RotateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check("rotate 2")
			if len(rot2.Retired) != 1 || rot2.Retired[0] != res.Current {
				t.Fatalf("second rotation retired %v, want [%s]", rot2.Retired, res.Current)
			}
			if e, _ := c.KVGet(ctx, s.PrivateKey(res.Current)); e != nil {
				t.Fatal("the retired key's private half is still stored")
			}
			mustReject(t, keyset(t, s), tok0.Token, clk.Now(), ErrUnknownKid)
			mustVerify(t, keyset(t, s), tok1.Token, clk.Now())

			pr, err := s.Prune(ctx, PruneOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check("prune")
			if len(pr.Pruned) != 1 || !pr.Changed {
				t.Fatalf("prune %+v", pr)
			}
			again, err := s.Prune(ctx, PruneOptions{})
			if err != nil || again.Changed || len(again.Pruned) != 0 {
				t.Fatalf("second prune: %+v, %v", again, err)
			}

			// Rollback: the previous key signs again, the current one
			// stays verifiable as next, the unused next is dropped.
			ring, _ := s.Ring(ctx)
			prevKid := ring.InState(Previous)[0].Kid
			curKid, unusedNext := ring.CurrentKey().Kid, ring.NextKey().Kid
			tok2, _ := s.Sign(ctx, SignOptions{TTL: time.Hour})
			rb, err := s.Rollback(ctx, RollbackOptions{})
			if err != nil {
				t.Fatal(err)
			}
			check("rollback")
			if rb.Current != prevKid || rb.Next != curKid || len(rb.Pruned) != 1 || rb.Pruned[0] != unusedNext {
				t.Fatalf("rollback %+v (previous %s, current %s, next %s)", rb, prevKid, curKid, unusedNext)
			}
			mustVerify(t, keyset(t, s), tok1.Token, clk.Now())
			mustVerify(t, keyset(t, s), tok2.Token, clk.Now())
			if tok3, _ := s.Sign(ctx, SignOptions{TTL: time.Minute}); tok3.Kid != prevKid {
				t.Fatalf("after rollback signed with %s, want %s", tok3.Kid, prevKid)
			}
			// Rolling back again: the key that signed tok2 is next now and
			// must stay verifiable; nothing older is left to roll back to.
			if _, err := s.Rollback(ctx, RollbackOptions{}); err == nil || !strings.Contains(err.Error(), "no previous key") {
				t.Fatalf("second rollback: %v", err)
			}

			// Revoke: the current key's tokens fail at once.
			tok4, _ := s.Sign(ctx, SignOptions{TTL: time.Hour})
			rv, err := s.Rotate(ctx, RotateOptions{Revoke: true})
			if err != nil {
				t.Fatal(err)
			}
			check("revoke")
			if len(rv.Revoked) != 1 || rv.Revoked[0] != tok4.Kid {
				t.Fatalf("revoke %+v", rv)
			}
			mustReject(t, keyset(t, s), tok4.Token, clk.Now(), ErrUnknownKid)
			mustVerify(t, keyset(t, s), tok2.Token, clk.Now()) // signed by the key that was next, now current
		})
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	s := newStore(t, c, newClock())
	if res, err := s.Init(ctx, InitOptions{DryRun: true}); err != nil || !res.DryRun || res.Changed || res.Current == "" {
		t.Fatalf("dry-run init: %+v, %v", res, err)
	}
	if l, _ := c.KVList(ctx, ""); len(l.Entries) != 0 {
		t.Fatalf("dry run wrote %d keys", len(l.Entries))
	}
	if _, err := s.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Ring(ctx)
	res, err := s.Rotate(ctx, RotateOptions{DryRun: true})
	if err != nil || res.Current != before.NextKey().Kid || res.Changed {
		t.Fatalf("dry-run rotate: %+v, %v", res, err)
	}
	after, _ := s.Ring(ctx)
	if after.Generation != before.Generation {
		t.Fatal("dry-run rotate changed the ring")
	}
}

// TestConcurrentRotations: 16 rotations at once against one ring. With a
// lock wait they serialise; with none, the losers fail cleanly. Either
// way the final ring is valid, every rotation that reported success is in
// it, and every key that was ever current still verifies its tokens.
func TestConcurrentRotations(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		wait time.Duration
	}{{"serialise", time.Minute}, {"fail fast", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			path := "micro/config/jwt-" + strings.ReplaceAll(tc.name, " ", "-")
			s0 := newStore(t, c, clk, WithPath(path))
			init, err := s0.Init(ctx, InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			const n = 16
			type outcome struct {
				res *Result
				tok *Signed
				err error
			}
			out := make([]outcome, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := newStore(t, c, clk, WithPath(path), WithLockWait(tc.wait), WithActor(fmt.Sprintf("op%d@test", i)))
					<-start
					res, err := s.Rotate(ctx, RotateOptions{})
					out[i] = outcome{res: res, err: err}
					if err == nil {
						out[i].tok, out[i].err = s.Sign(ctx, SignOptions{TTL: time.Hour})
					}
				}()
			}
			close(start)
			wg.Wait()
			goConfigRead(t, c, "micro/config/")

			snap, err := s0.Load(ctx)
			if err != nil {
				t.Fatalf("final ring: %v", err)
			}
			won := 0
			everCurrent := map[string]bool{init.Current: true}
			for i, o := range out {
				if o.err != nil {
					var busy *BusyError
					var lost *LostRaceError
					if tc.wait > 0 || !(errors.As(o.err, &busy) || errors.As(o.err, &lost)) {
						t.Errorf("rotation %d: %v", i, o.err)
					}
					continue
				}
				won++
				everCurrent[o.res.Current] = true
			}
			if tc.wait > 0 && won != n {
				t.Fatalf("%d of %d rotations went through with a lock wait", won, n)
			}
			if won == 0 {
				t.Fatal("no rotation went through")
			}
			if got := snap.Ring.Generation; got != int64(1+won) {
				t.Errorf("generation %d after %d successful rotations (want %d): a write was lost or doubled", got, won, 1+won)
			}
			if got := len(snap.Ring.InState(Previous)); got != won {
				t.Errorf("%d previous keys after %d rotations", got, won)
			}
			audit, _ := c.KVList(ctx, s0.AuditPrefix())
			if len(audit.Entries) != 1+won {
				t.Errorf("%d audit records for %d writes", len(audit.Entries), 1+won)
			}
			for kid := range everCurrent {
				k := snap.Ring.Find(kid)
				if k == nil || !k.Verifiable(clk.Now()) || !snap.JWKS.Has(kid) {
					t.Errorf("key %s was current and is lost: %+v", kid, k)
				}
			}
			for i, o := range out {
				if o.tok != nil {
					mustVerify(t, snap.JWKS, o.tok.Token, clk.Now())
				} else if o.err == nil {
					t.Errorf("rotation %d: no token", i)
				}
			}
			if l, _ := c.KVGet(ctx, s0.LockKey()); l != nil {
				t.Errorf("lock key left behind: %+v", l)
			}
		})
	}
}

// TestFencing: a rotation that lost its lock between reading and writing
// (its session destroyed, another operator rotating meanwhile) writes
// nothing and says so.
func TestFencing(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	loser := newStore(t, c, clk)
	winner := newStore(t, c, clk, WithActor("winner@test"))
	if _, err := loser.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	var won *Result
	loser.beforeCommit = func(l *registry.Lock) {
		if _, err := c.API.Session().Destroy(l.Session, nil); err != nil {
			t.Error(err)
		}
		var err error
		if won, err = winner.Rotate(ctx, RotateOptions{}); err != nil {
			t.Errorf("winner: %v", err)
		}
	}
	_, err := loser.Rotate(ctx, RotateOptions{})
	var lost *LostRaceError
	if !errors.As(err, &lost) || err.Error() != "another rotation won; nothing was written" {
		t.Fatalf("loser: err = %v", err)
	}
	ring, _ := loser.Ring(ctx)
	if won == nil || ring.Generation != 2 || ring.CurrentKey().Kid != won.Current {
		t.Fatalf("ring after the race: generation %d, current %s; winner %+v", ring.Generation, ring.CurrentKey().Kid, won)
	}
	if _, err := loser.Load(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLockHeld: with no wait, a second operator is told who holds the lock.
func TestLockHeld(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	s := newStore(t, c, clk, WithLockWait(0))
	if _, err := s.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	holder, _ := json.Marshal(Holder{Op: "rotate", Who: "alice@bastion", Since: clk.Now()})
	l, err := c.AcquireLock(ctx, s.LockKey(), holder)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Rotate(ctx, RotateOptions{})
	var busy *BusyError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "alice@bastion (rotate since") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("err = %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestGraceAndRecordedTTL(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	s := newStore(t, c, newClock())
	if _, err := s.Init(ctx, InitOptions{MaxTokenTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Rotate(ctx, RotateOptions{Grace: 10 * time.Minute})
	var short *GraceTooShortError
	if !errors.As(err, &short) || !strings.Contains(err.Error(), "max token TTL is 1h0m0s") {
		t.Fatalf("short grace: %v", err)
	}
	if res, err := s.Rotate(ctx, RotateOptions{Grace: 10 * time.Minute, Force: true}); err != nil || res.GraceSeconds != 600 {
		t.Fatalf("forced: %+v, %v", res, err)
	}
	// A longer token than the ring covers is recorded before it is signed.
	tok, err := s.Sign(ctx, SignOptions{TTL: 3 * time.Hour})
	if err != nil || !tok.RecordedTTL {
		t.Fatalf("sign 3h: %+v, %v", tok, err)
	}
	goConfigRead(t, c, "micro/config/")
	ring, _ := s.Ring(ctx)
	if ring.IssuedMaxTTL != 3*3600 || ring.RequiredGrace() != 3*time.Hour {
		t.Fatalf("ring records %d s", ring.IssuedMaxTTL)
	}
	_, err = s.Rotate(ctx, RotateOptions{Grace: time.Hour})
	if !errors.As(err, &short) || !strings.Contains(err.Error(), "key sign has issued tokens valid for 3h0m0s") {
		t.Fatalf("grace under the issued TTL: %v", err)
	}
	res, err := s.Rotate(ctx, RotateOptions{})
	if err != nil || res.GraceSeconds != 3*3600 {
		t.Fatalf("default grace: %+v, %v", res, err)
	}
	if tok, _ := s.Sign(ctx, SignOptions{TTL: time.Hour}); tok.RecordedTTL {
		t.Fatal("a shorter TTL was recorded")
	}
}

// TestCorruptValues: a value that is not what microctl wrote is reported by
// its path and nothing is changed.
func TestCorruptValues(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	for _, tc := range []struct {
		name, key, value string
	}{
		{"raw PEM beside the ring", "stray", "-----BEGIN PRIVATE KEY-----\nMC4CAQ==\n-----END PRIVATE KEY-----"},
		{"bare JSON string", "note", `"hello"`},
		{"ring not JSON", "ring", "{not json"},
		{"ring with an unknown field", "ring", `{"schema":1,"alg":"EdDSA","max_token_ttl_seconds":3600,"generation":1,"updated_at":"2025-01-01T00:00:00Z","keys":[],"extra":1}`},
		{"private key of another kid", "private/KID", `{"kid":"other","alg":"EdDSA","created_at":"2025-01-01T00:00:00Z","pem":"x"}`},
		{"jwks not JSON", "jwks", `[1,2]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "micro/config/corrupt-" + strings.ReplaceAll(tc.name, " ", "-")
			s := newStore(t, c, newClock(), WithPath(path))
			res, err := s.Init(ctx, InitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			key := path + "/" + strings.ReplaceAll(tc.key, "KID", res.Current)
			if _, err := c.API.KV().Put(&api.KVPair{Key: key, Value: []byte(tc.value)}, nil); err != nil {
				t.Fatal(err)
			}
			before, _ := c.KVList(ctx, path+"/")
			_, err = s.Rotate(ctx, RotateOptions{})
			var corrupt *CorruptError
			if !errors.As(err, &corrupt) || corrupt.Key != key || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("rotate: err = %v, want a CorruptError naming %s", err, key)
			}
			after, _ := c.KVList(ctx, path+"/")
			if len(after.Entries) != len(before.Entries) {
				t.Fatal("the rotation changed the ring")
			}
			for i := range after.Entries {
				if after.Entries[i].ModifyIndex != before.Entries[i].ModifyIndex {
					t.Fatalf("%s changed", after.Entries[i].Key)
				}
			}
		})
	}
}

func TestLegacyMode(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	s := newStore(t, c, clk)
	// The seed's gateway already has a secret: init adopts it.
	seedSecret := "a-secret-the-seed-gateway-already-uses"
	if _, err := c.API.KV().Put(&api.KVPair{Key: DefaultLegacyPath, Value: []byte(`{"key":"` + seedSecret + `"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(ctx, InitOptions{Alg: EdDSA, Legacy: true}); err == nil {
		t.Fatal("legacy EdDSA accepted")
	}
	if _, err := s.Init(ctx, InitOptions{Alg: HS256}); err == nil || !strings.Contains(err.Error(), "legacy") {
		t.Fatalf("HS256 without legacy: %v", err)
	}
	res, err := s.Init(ctx, InitOptions{Legacy: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "adopted") {
		t.Fatalf("warnings %v", res.Warnings)
	}
	goConfigRead(t, c, "micro/config/")
	legacy := func() string {
		e, _ := c.KVGet(ctx, DefaultLegacyPath)
		var v struct{ Key string }
		if err := json.Unmarshal(e.Value, &v); err != nil {
			t.Fatal(err)
		}
		return v.Key
	}
	if legacy() != seedSecret {
		t.Fatal("init replaced the seed's secret")
	}
	tok, err := s.Sign(ctx, SignOptions{TTL: time.Hour})
	if err != nil || tok.Alg != HS256 {
		t.Fatalf("sign: %+v %v", tok, err)
	}
	mustVerify(t, keyset(t, s), tok.Token, clk.Now())
	if doc, _ := s.JWKSDoc(ctx); strings.Contains(string(doc), seedSecret) || strings.Contains(string(doc), `"k"`) {
		t.Fatalf("the JWKS leaks the shared secret: %s", doc)
	}
	rot, err := s.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	goConfigRead(t, c, "micro/config/")
	if legacy() == seedSecret || !strings.Contains(strings.Join(rot.Warnings, " "), "invalidates every outstanding token") {
		t.Fatalf("rotation: legacy key unchanged or no warning: %+v", rot)
	}
	// Our own verifier keeps the old secret for the grace; the seed's
	// gateway cannot, which is what the warning says.
	mustVerify(t, keyset(t, s), tok.Token, clk.Now())
	if _, err := s.Rotate(ctx, RotateOptions{Alg: EdDSA}); err == nil {
		t.Fatal("EdDSA key accepted into a legacy ring")
	}
}

// TestACL: with default-deny ACLs a token that may only read the prefix
// can show and verify but not change the ring, and the error names the KV
// path; a gateway token that cannot read private keys still verifies.
func TestACL(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := agent.Client(t, agent.Token)
	ctx := ctxT(t)
	clk := newClock()
	admin := newStore(t, root, clk)
	if _, err := admin.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	token := func(name, rules string) *registry.Client {
		return agent.Client(t, agent.TokenWith(t, name, rules))
	}
	readOnly := token("read-only", `key_prefix "micro/config/jwt/" { policy = "read" }`)
	ro := newStore(t, readOnly, clk, WithLockWait(0))
	if _, err := ro.Ring(ctx); err != nil {
		t.Fatalf("read-only show: %v", err)
	}
	_, err := ro.Rotate(ctx, RotateOptions{})
	if err == nil || !strings.Contains(err.Error(), "micro/config/jwt") {
		t.Fatalf("read-only rotate: err = %v, want one naming the ring's KV path", err)
	}
	var pe *registry.PermissionError
	if !errors.As(err, &pe) {
		t.Fatalf("read-only rotate: %T is not a permission error", err)
	}

	// May lock, may not write the ring: the transaction is refused and the
	// error names the key Consul denied.
	locker := token("locker", `key_prefix "micro/config/jwt/" { policy = "read" }
key_prefix "microctl/" { policy = "write" }
session_prefix "" { policy = "write" }`)
	_, err = newStore(t, locker, clk).Rotate(ctx, RotateOptions{})
	var denied *registry.KVDeniedError
	if !errors.As(err, &denied) || !strings.HasPrefix(denied.Key, "micro/config/jwt/") || denied.Access != "write" {
		t.Fatalf("locker rotate: err = %v", err)
	}
	if !strings.Contains(denied.Hint(), `key_prefix "micro/config/jwt/`) {
		t.Errorf("hint %q", denied.Hint())
	}

	// A gateway's token: the JWKS yes, private keys no.
	gw := token("gateway", `key_prefix "micro/config/jwt/" { policy = "read" }
key_prefix "micro/config/jwt/private/" { policy = "deny" }`)
	gs := newStore(t, gw, clk)
	_, err = gs.Signer(ctx)
	if !errors.As(err, &denied) || !strings.HasPrefix(denied.Key, "micro/config/jwt/private/") || denied.Access != "read" {
		t.Fatalf("gateway signer: err = %v", err)
	}
	if _, err := gs.Rotate(ctx, RotateOptions{}); !errors.As(err, &pe) || !strings.Contains(err.Error(), "micro/config/jwt") {
		t.Fatalf("gateway rotate: err = %v", err)
	}
	v, err := StartVerifier(ctx, gw, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.Sign(ctx, SignOptions{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok.Token); err != nil {
		t.Fatalf("gateway verify: %v", err)
	}
}

// TestVerifierFollows: a verifier sees rotations through its blocking query
// and stops accepting a revoked key's tokens.
func TestVerifierFollows(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	s := newStore(t, c, clk)
	updates := make(chan *KeySet, 16)
	vctx, stop := context.WithCancel(ctx)
	defer stop()
	v, err := NewVerifier(c, WithClock(clk.Now), WithWait(time.Minute), WithOnUpdate(func(ks *KeySet) { updates <- ks }))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- v.Run(vctx) }()
	if ks := <-updates; len(ks.Kids()) != 0 {
		t.Fatalf("keys before init: %v", ks.Kids())
	}
	waitGen := func(g int64) {
		t.Helper()
		for ks := range updates {
			if ks.Generation >= g {
				return
			}
		}
	}
	if _, err := s.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGen(1)
	tok, _ := s.Sign(ctx, SignOptions{TTL: time.Hour})
	if _, err := v.Verify(tok.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGen(2)
	tok2, _ := s.Sign(ctx, SignOptions{TTL: time.Hour})
	for _, tk := range []string{tok.Token, tok2.Token} {
		if _, err := v.Verify(tk); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
	}
	if _, err := s.Rotate(ctx, RotateOptions{Revoke: true}); err != nil {
		t.Fatal(err)
	}
	waitGen(3)
	if _, err := v.Verify(tok2.Token); !errors.Is(err, ErrUnknownKid) {
		t.Fatalf("revoked key's token: %v", err)
	}
	if _, err := v.Verify(tok.Token); err != nil {
		t.Fatalf("previous key's token after revoking another: %v", err)
	}
	// A corrupt write keeps the keys already loaded.
	if _, err := c.API.KV().Put(&api.KVPair{Key: s.JWKSKey(), Value: []byte("oops")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok.Token); err != nil {
		t.Fatalf("after a corrupt JWKS write: %v", err)
	}
	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}

// TestManyKeysExpireTogether: more keys retire at once than one Consul
// transaction (64 operations) can delete. The rotation still goes through,
// and prune finishes the job in as many fenced rounds as it needs.
func TestManyKeysExpireTogether(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	s := newStore(t, c, clk)
	if _, err := s.Init(ctx, InitOptions{MaxTokenTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	const n = 80
	for i := range n {
		if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	clk.Advance(time.Hour)
	res, err := s.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Retired) != n {
		t.Fatalf("retired %d keys, want %d", len(res.Retired), n)
	}
	goConfigRead(t, c, "micro/config/")
	if left, _ := c.KVKeys(ctx, s.PrivateKey("")); len(left) <= 3 {
		t.Fatalf("%d private keys after the rotation: the test did not overflow a transaction", len(left))
	}
	pr, err := s.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Pruned) != n {
		t.Fatalf("pruned %d, want %d", len(pr.Pruned), n)
	}
	keys, _ := c.KVKeys(ctx, s.PrivateKey(""))
	ring, _ := s.Ring(ctx)
	if len(keys) != len(ring.Keys) || len(ring.Keys) != 3 {
		t.Fatalf("%d private keys and %d ring keys left, want 3 and 3", len(keys), len(ring.Keys))
	}
	if again, err := s.Prune(ctx, PruneOptions{}); err != nil || again.Changed {
		t.Fatalf("second prune: %+v %v", again, err)
	}
	goConfigRead(t, c, "micro/config/")
}
