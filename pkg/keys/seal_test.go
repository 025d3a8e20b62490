package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

func newKEK(t *testing.T) *KEK {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	k, err := NewKEK(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKEK(t *testing.T) {
	b32 := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"openssl output", base64.StdEncoding.EncodeToString(b32) + "\n", true},
		{"no newline", base64.StdEncoding.EncodeToString(b32), true},
		{"16 bytes", base64.StdEncoding.EncodeToString(b32[:16]) + "\n", false},
		{"48 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat(b32, 2)[:48]), false},
		{"hex", strings.Repeat("ab", 32), false},
		{"passphrase", "correct horse battery staple", false},
		{"url-safe alphabet", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)), false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := ParseKEK([]byte(tc.in))
			if tc.ok != (err == nil) {
				t.Fatalf("ParseKEK(%q) = %v, %v", tc.in, k, err)
			}
			if err != nil && (strings.Contains(err.Error(), tc.in) && tc.in != "") {
				t.Fatalf("the error repeats the file's content: %v", err)
			}
			if k != nil && strings.Contains(k.String(), tc.in) {
				t.Fatal("a KEK prints itself")
			}
		})
	}
}

// TestSealOpenAAD: a sealed value opens only under its own path, kid and
// alg, and only with its KEK; a forged KEK id does not help.
func TestSealOpenAAD(t *testing.T) {
	m, err := generate(rand.Reader, EdDSA, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := generate(rand.Reader, EdDSA, 0)
	k1, k2 := newKEK(t), newKEK(t)
	d, err := k1.seal("a/jwt", m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k1.open("a/jwt", d); err != nil || got.kid != m.kid {
		t.Fatalf("open: %v, %v", got, err)
	}
	moved := d
	moved.Kid = other.kid
	forged := d
	forged.Sealed = &sealedBox{V: 1, KEK: k2.id, Nonce: d.Sealed.Nonce, CT: d.Sealed.CT}
	for _, tc := range []struct {
		name string
		k    *KEK
		path string
		d    privateDoc
	}{
		{"other path", k1, "b/jwt", d},
		{"other kid", k1, "a/jwt", moved},
		{"other alg", k1, "a/jwt", func() privateDoc { x := d; x.Alg = ES256; return x }()},
		{"wrong KEK, forged id", k2, "a/jwt", forged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.k.open(tc.path, tc.d); err == nil || !strings.Contains(err.Error(), "does not open") {
				t.Fatalf("opened: %v", err)
			}
		})
	}
	if _, err := k2.open("a/jwt", d); !errors.As(err, new(*WrongKEKError)) {
		t.Fatalf("wrong KEK: %v", err)
	}
	if _, err := k1.seal("a/jwt", mustSecret(t), time.Now()); !errors.Is(err, ErrLegacySeal) {
		t.Fatalf("HS256: %v", err)
	}
}

func mustSecret(t *testing.T) *material {
	m, err := fromSecret("0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// privateValues returns every value under the ring's private/ prefix.
func privateValues(t *testing.T, c *registry.Client, s *Store) map[string][]byte {
	t.Helper()
	l, err := c.KVList(context.Background(), s.PrivateKey(""))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range l.Entries {
		out[e.Key] = e.Value
	}
	return out
}

func TestSealedRing(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	k1, k2 := newKEK(t), newKEK(t)
	path := "micro/config/jwt-sealed"
	plain := newStore(t, c, clk, WithPath(path))
	withK1 := newStore(t, c, clk, WithPath(path), WithKEK(k1))
	withK2 := newStore(t, c, clk, WithPath(path), WithKEK(k2))
	if _, err := plain.Init(ctx, InitOptions{MaxTokenTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	tok0, err := plain.Sign(ctx, SignOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	before := privateValues(t, c, plain)
	// A KEK for a plaintext ring: refused rather than half sealed.
	if _, err := withK1.Rotate(ctx, RotateOptions{}); !errors.As(err, new(*NotSealedError)) {
		t.Fatalf("rotate with a KEK on a plaintext ring: %v", err)
	}
	res, err := withK1.Seal(ctx, SealOptions{})
	if err != nil || !res.Changed {
		t.Fatalf("seal: %+v, %v", res, err)
	}
	after := privateValues(t, c, plain)
	if len(after) != len(before) {
		t.Fatalf("%d private keys before, %d after", len(before), len(after))
	}
	for key, v := range after {
		var d privateDoc
		if err := decodeObject(v, &d); err != nil || d.Sealed == nil || d.PEM != "" || d.Secret != "" {
			t.Fatalf("%s is not sealed: %s", key, v)
		}
		old := before[key]
		var od privateDoc
		_ = json.Unmarshal(old, &od)
		body := strings.Split(strings.TrimSpace(od.PEM), "\n")
		if bytes.Contains(v, []byte("PRIVATE KEY")) || bytes.Contains(v, []byte("-----")) || bytes.Contains(v, []byte(body[1])) {
			t.Fatalf("%s still holds the PEM: %s", key, v)
		}
	}
	goConfigRead(t, c, "micro/config/")
	ring, _ := plain.Ring(ctx)
	if ring.Sealed != k1.ID() {
		t.Fatalf("ring.sealed = %q", ring.Sealed)
	}
	// Without the KEK, or with another, nothing changes and one line says why.
	for _, tc := range []struct {
		s    *Store
		want any
	}{{plain, new(*SealedError)}, {withK2, new(*WrongKEKError)}} {
		if _, err := tc.s.Rotate(ctx, RotateOptions{}); !errors.As(err, tc.want) || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("rotate: %v", err)
		}
		if _, err := tc.s.Sign(ctx, SignOptions{TTL: time.Minute}); !errors.As(err, tc.want) {
			t.Fatalf("sign: %v", err)
		}
	}
	if r, _ := plain.Ring(ctx); r.Generation != ring.Generation {
		t.Fatal("a refused command changed the ring")
	}
	// With it: sign and rotate as before; new keys are sealed.
	if _, err := withK1.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok1, err := withK1.Sign(ctx, SignOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ks := keyset(t, plain)
	mustVerify(t, ks, tok0.Token, clk.Now())
	mustVerify(t, ks, tok1.Token, clk.Now())
	for key, v := range privateValues(t, c, plain) {
		if !bytes.Contains(v, []byte(`"sealed"`)) || bytes.Contains(v, []byte("PRIVATE KEY")) {
			t.Fatalf("%s: %s", key, v)
		}
	}
	// A ring copied to another path does not open there.
	moved := newStore(t, c, clk, WithPath("micro/config/jwt-moved"), WithKEK(k1))
	l, _ := c.KVList(ctx, path+"/")
	txn := &registry.Txn{}
	for _, e := range l.Entries {
		txn.CAS("micro/config/jwt-moved/"+strings.TrimPrefix(e.Key, path+"/"), e.Value, 0)
	}
	if err := c.Commit(ctx, txn); err != nil {
		t.Fatal(err)
	}
	if _, err := moved.Load(ctx); !errors.As(err, new(*CorruptError)) || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("moved ring: %v", err)
	}
	if _, err := moved.Sign(ctx, SignOptions{TTL: time.Minute}); err == nil || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("sign from the moved ring: %v", err)
	}
	// Rekey: afterwards only the new KEK opens it.
	if _, err := withK1.Rekey(ctx, k2, SealOptions{}); err != nil {
		t.Fatalf("rekey: %v", err)
	}
	if _, err := withK1.Sign(ctx, SignOptions{TTL: time.Minute}); !errors.As(err, new(*WrongKEKError)) {
		t.Fatalf("old KEK after rekey: %v", err)
	}
	if _, err := withK2.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatalf("new KEK after rekey: %v", err)
	}
	mustVerify(t, keyset(t, plain), tok1.Token, clk.Now())
}

// TestSealedKeyMovedToAnotherKid: a sealed value copied over another kid's
// key, its kid member rewritten to match, does not open.
func TestSealedKeyMovedToAnotherKid(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	k := newKEK(t)
	s := newStore(t, c, newClock(), WithKEK(k))
	res, err := s.Init(ctx, InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := c.KVGet(ctx, s.PrivateKey(res.Current))
	next, _ := c.KVGet(ctx, s.PrivateKey(res.Next))
	forged := bytes.Replace(cur.Value, []byte(res.Current), []byte(res.Next), 1)
	if ok, _, err := c.API.KV().CAS(&api.KVPair{Key: next.Key, Value: forged, ModifyIndex: next.ModifyIndex}, nil); err != nil || !ok {
		t.Fatal(err)
	}
	if _, err := s.Rotate(ctx, RotateOptions{}); !errors.As(err, new(*CorruptError)) || !strings.Contains(err.Error(), "does not open") {
		t.Fatalf("rotate over a moved key: %v", err)
	}
}

// TestSealedConcurrencyAndFencing: a sealed ring serialises concurrent
// rotations and fences a writer that lost its lock, as a plaintext one.
func TestSealedConcurrencyAndFencing(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	k := newKEK(t)
	s0 := newStore(t, c, clk, WithKEK(k))
	if _, err := s0.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := newStore(t, c, clk, WithKEK(k), WithLockWait(time.Minute))
			_, errs[i] = s.Rotate(ctx, RotateOptions{})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("rotation %d: %v", i, err)
		}
	}
	snap, err := s0.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Ring.Generation != 1+n {
		t.Fatalf("generation %d after %d rotations", snap.Ring.Generation, n)
	}
	winner := newStore(t, c, clk, WithKEK(k), WithActor("winner@test"))
	s0.beforeCommit = func(l *registry.Lock) {
		if _, err := c.API.Session().Destroy(l.Session, nil); err != nil {
			t.Error(err)
		}
		if _, err := winner.Rotate(ctx, RotateOptions{}); err != nil {
			t.Errorf("winner: %v", err)
		}
	}
	if _, err := s0.Rotate(ctx, RotateOptions{}); !errors.As(err, new(*LostRaceError)) {
		t.Fatalf("fenced: %v", err)
	}
	s0.beforeCommit = nil
	if snap, err := s0.Load(ctx); err != nil || snap.Ring.Generation != 2+n {
		t.Fatalf("after the race: %v", err)
	}
}

// TestLegacyCannotBeSealed: --kek-file with --legacy is refused, not
// pretended.
func TestLegacyCannotBeSealed(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	k := newKEK(t)
	s := newStore(t, c, newClock(), WithPath("micro/config/jwt-lg"), WithLegacyPath("micro/config/jwt-lg-key"), WithKEK(k))
	if _, err := s.Init(ctx, InitOptions{Legacy: true}); !errors.Is(err, ErrLegacySeal) {
		t.Fatalf("init --legacy with a KEK: %v", err)
	}
	plain := newStore(t, c, newClock(), WithPath("micro/config/jwt-lg"), WithLegacyPath("micro/config/jwt-lg-key"))
	if _, err := plain.Init(ctx, InitOptions{Legacy: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seal(ctx, SealOptions{}); !errors.Is(err, ErrLegacySeal) {
		t.Fatalf("seal a legacy ring: %v", err)
	}
}

// FuzzParseKEK: a KEK file is outside input: whatever it holds, ParseKEK
// either refuses it or returns a 32-byte key, and never echoes it.
func FuzzParseKEK(f *testing.F) {
	f.Add([]byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + "\n"))
	f.Add([]byte("not a key"))
	f.Add([]byte(strings.Repeat("A", 44)))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseKEK(b)
		if err != nil {
			if err.Error() != errNotKEK.Error() {
				t.Fatalf("error %q: not the one fixed message (it must never echo the input)", err)
			}
			return
		}
		if k.ID() == "" || len(k.key) != 32 {
			t.Fatal("accepted without a key")
		}
	})
}
