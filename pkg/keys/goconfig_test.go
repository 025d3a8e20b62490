package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

// seedGateway is the seed's lib/token (InitConfig, enableAutoUpdate) on
// go-config, as micro/go-micro's config package does it in v1.10.0 and
// v2.9.1 (written from those sources, not copied):
//
//   - the config's values are go-simplejson values; Bytes() of a string is
//     its raw bytes, of anything else its JSON, of a missing path "null"
//     (config/reader/json/values.go, go-simplejson);
//   - a watcher on path caches the value there twice: the memory loader's
//     watcher (config/loader/memory: m.Get(path) when made) and the config's
//     watcher (config/default.go: c.Get(path), from the config's own copy,
//     which config.run updates on its own goroutine);
//   - on a change the loader's watcher drops a value equal to its cache and
//     otherwise remembers it and hands on ChangeSet.Data = value.Bytes();
//     the config's watcher drops Data equal to ITS cache ("only process
//     changes"), else parses Data again with the json reader (newValues:
//     go-simplejson's UnmarshalJSON, a json.Decoder with UseNumber that
//     stops after the first value; on error the whole string) and returns
//     Get().Bytes();
//   - the seed puts those bytes in as the HMAC key and makes a new watcher
//     at once. The config's copy then still holds the value from before
//     the event that woke it (config.run has not run yet): the case the
//     issue measured 5 times in 5, modelled here as always.
//
// Feed it every value the KV key takes, one Consul change at a time.
type seedGateway struct {
	path         []string // inside the object at the legacy KV key
	key          []byte   // what the gateway signs and verifies with
	now          []byte   // value at path in the loader
	loaderCached []byte
	configCached []byte
	missed       int
}

// valueAt is go-simplejson's Get(path...).Bytes() on the decoded KV value.
func valueAt(kv []byte, path []string) []byte {
	var v any
	if kv != nil {
		if err := json.Unmarshal(kv, &v); err != nil {
			panic(err) // go-config's Consul source fails the read; not modelled
		}
	}
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			v = nil
			break
		}
		v = m[p]
	}
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, _ := json.Marshal(v) // nil marshals as null
	return b
}

// reparse is the json reader's newValues(Data).Get().Bytes().
func reparse(data []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return data
	}
	if s, ok := v.(string); ok {
		return []byte(s)
	}
	b, _ := json.Marshal(v)
	return b
}

// newSeedGateway is InitConfig: conf.Get(path).Bytes(), no re-parse.
func newSeedGateway(kv []byte, path ...string) *seedGateway {
	v := valueAt(kv, path)
	return &seedGateway{path: path, key: v, now: v, loaderCached: v, configCached: v}
}

// change is one Consul change of the KV key (nil: deleted).
func (g *seedGateway) change(kv []byte) {
	before := g.now
	v := valueAt(kv, g.path)
	g.now = v
	if bytes.Equal(g.loaderCached, v) {
		return // the loader's watcher: "only process changes"
	}
	g.loaderCached = v
	if bytes.Equal(g.configCached, v) {
		g.missed++ // the config's watcher drops it and keeps waiting
		return
	}
	g.key = reparse(v)
	// enableAutoUpdate: a new watcher, right away.
	g.loaderCached, g.configCached = v, before
}

func legacyJSON(secret string) []byte {
	b, _ := json.Marshal(map[string]string{"key": secret})
	return b
}

// gatewayAccepts is jwt-go's HS256 check with the gateway's key bytes.
func gatewayAccepts(g *seedGateway, token string) bool {
	_, err := jws.Verify([]byte(token), jws.WithKey(jwa.HS256(), g.key))
	return err == nil
}

func forge(t *testing.T, key []byte) string {
	t.Helper()
	tok := jwt.New()
	_ = tok.Set(jwt.SubjectKey, "mallory")
	_ = tok.Set(jwt.ExpirationKey, time.Now().Add(time.Hour))
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSeedGatewayModel pins the helper to go-config's behaviour as the
// issue measured it: a secret that starts like a JSON value arrives as
// that value (a token forged with "9" passes), a change back to the value
// before the last one is missed, a deleted key reads as "null".
func TestSeedGatewayModel(t *testing.T) {
	g := newSeedGateway(legacyJSON("aaaaaaaaaaaaaaaaaaaaaa"), "key")
	g.change(legacyJSON("9yKcQ3hzbn5x1Dk2TzYw0w8e6Ksz2m1Pq4r5s6t7u8v"))
	if string(g.key) != "9" {
		t.Fatalf("key after a digit-first secret = %q, want 9", g.key)
	}
	if !gatewayAccepts(g, forge(t, []byte("9"))) {
		t.Fatal("a token forged with the key 9 is refused: the model does not reproduce the hole")
	}
	for raw, want := range map[string]string{"trueSecret": "true", "-5abc": "-5", "nullx": "null", `"ab"cd`: "ab", "[1]x": "[1]", "{}z": "{}", " 7q": "7", "abc": "abc", "-x": "-x", "tx": "tx"} {
		if got := string(reparse([]byte(raw))); got != want || GoConfigReads(raw) != want {
			t.Errorf("go-config reads %q as %q (GoConfigReads %q), want %q", raw, got, GoConfigReads(raw), want)
		}
	}

	// Rollback the old way: A, B, then A again.
	a, b := "Aaaaaaaaaaaaaaaaaaaaaa", "Bbbbbbbbbbbbbbbbbbbbbb"
	g = newSeedGateway(legacyJSON(a), "key")
	g.change(legacyJSON(b))
	g.change(legacyJSON(a))
	if string(g.key) != b || g.missed != 1 {
		t.Fatalf("after A, B, A the gateway holds %q (missed %d): the model does not reproduce the missed rollback", g.key, g.missed)
	}
	// ... and the gateway keeps the revoked secret B until another change.
	if !gatewayAccepts(g, forge(t, []byte(b))) {
		t.Fatal("the gateway should still accept B")
	}

	// A gateway watching the whole object sees the generation: a write
	// back to an earlier secret is a new value there.
	g = newSeedGateway(legacyValue(a, 1))
	g.change(legacyValue(b, 2))
	g.change(legacyValue(a, 3))
	if d, err := parseLegacy(g.key); g.missed != 0 || err != nil || d.Key != a || d.Generation != 3 {
		t.Fatalf("object watcher missed %d, holds %s", g.missed, g.key)
	}

	g = newSeedGateway(legacyJSON(a), "key")
	g.change(nil)
	if string(g.key) != "null" {
		t.Fatalf("a deleted key reads as %q, want null", g.key)
	}
}

// TestLegacySecretsReachGoConfigIntact: every secret microctl makes comes
// through go-config as itself; the old generator (plain base64url) did not
// in about 22% of draws.
func TestLegacySecretsReachGoConfigIntact(t *testing.T) {
	const n = 3000
	unsafeBefore := 0
	g := newSeedGateway(legacyValue("initial-secret-aaaaaaaa", 0), "key")
	for i := range n {
		m, err := generate(rand.Reader, HS256, 0)
		if err != nil {
			t.Fatal(err)
		}
		secret := string(m.signer.([]byte))
		if err := CheckLegacySecret(secret); err != nil {
			t.Fatalf("generated %q: %v", secret, err)
		}
		g.change(legacyValue(secret, int64(i+1)))
		if string(g.key) != secret {
			t.Fatalf("draw %d: the gateway verifies with %q, not the secret %q", i, g.key, secret)
		}
		if !gatewayAccepts(g, forge(t, []byte(secret))) {
			t.Fatal("a token signed with the secret is refused")
		}
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		if CheckLegacySecret(base64.RawURLEncoding.EncodeToString(b)) != nil {
			unsafeBefore++
		}
	}
	// 14 of 64 first characters are unsafe: expect ~656 of 3000; the bound
	// is loose so the test cannot flake, and proves the old way was unsafe.
	if unsafeBefore < n/10 {
		t.Errorf("only %d of %d plain base64url secrets were unsafe; expected about 22%%", unsafeBefore, n)
	}
	t.Logf("plain base64url: %d of %d secrets unsafe for go-config", unsafeBefore, n)
}

// digitFirst is a random source whose first 32 bytes encode to a secret
// starting with '9' (0xf4 -> "9" in base64url), then real randomness.
type digitFirst struct{ used bool }

func (d *digitFirst) Read(p []byte) (int, error) {
	if !d.used {
		d.used = true
		for i := range p {
			p[i] = 0xf4
		}
		return len(p), nil
	}
	return rand.Read(p)
}

func TestNewLegacySecretRedraws(t *testing.T) {
	b := bytes.Repeat([]byte{0xf4}, 32)
	if s := base64.RawURLEncoding.EncodeToString(b); s[0] != '9' {
		t.Fatalf("test vector starts with %q", s[:1])
	}
	s, err := newLegacySecret(&digitFirst{})
	if err != nil || s[0] == '9' || CheckLegacySecret(s) != nil {
		t.Fatalf("secret %q, %v", s, err)
	}
	zeros := bytes.NewReader(make([]byte, 32*maxSecretDraws))
	if s, err := newLegacySecret(zeros); err != nil || s[0] != 'A' {
		t.Fatalf("all-zero source: %q %v", s, err)
	}
	nines := bytes.NewReader(bytes.Repeat([]byte{0xf4}, 32*maxSecretDraws))
	if _, err := newLegacySecret(nines); err == nil {
		t.Fatal("a source that only gives unsafe secrets was accepted")
	}
}

// TestLegacyWritesReachGoConfigWatcher runs a legacy ring through the
// operations the issue found broken, against a real Consul, and feeds every
// value the legacy key takes to the seed's gateway as go-config would:
// after each, the gateway verifies with the ring's current secret, and no
// value is ever written twice. Rollback is refused in legacy mode, and the
// key is never deleted.
func TestLegacyWritesReachGoConfigWatcher(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	s := newStore(t, c, clk)
	// An existing seed secret that starts with a digit: adopted (tokens in
	// flight keep working) but flagged, and the next rotation fixes it.
	seed := "9yKcQ3hzbn5x1Dk2TzYw0w8e6Ksz2m1Pq4r5s6t7u8v"
	if _, err := c.API.KV().Put(&api.KVPair{Key: DefaultLegacyPath, Value: legacyJSON(seed)}, nil); err != nil {
		t.Fatal(err)
	}
	g := newSeedGateway(legacyJSON(seed), "key")
	seen := map[string]bool{string(legacyJSON(seed)): true}
	e0, err := c.KVGet(ctx, DefaultLegacyPath)
	if err != nil {
		t.Fatal(err)
	}
	lastIndex := e0.ModifyIndex
	step := func(what string) {
		t.Helper()
		e, err := c.KVGet(ctx, DefaultLegacyPath)
		if err != nil || e == nil {
			t.Fatalf("%s: legacy key gone (%v)", what, err)
		}
		if e.ModifyIndex != lastIndex {
			if seen[string(e.Value)] {
				t.Fatalf("%s: wrote %s, a value written before", what, e.Value)
			}
			seen[string(e.Value)] = true
			g.change(e.Value)
			lastIndex = e.ModifyIndex
		}
		ks, ring, err := s.KeySet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cur := ring.CurrentKey().Kid
		sg, err := s.Signer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sg.Kid() != cur || !bytes.Equal(g.key, sg.m.signer.([]byte)) {
			t.Fatalf("%s: the gateway verifies with %q, the ring's current secret is another (missed %d)", what, g.key, g.missed)
		}
		// A token the seed's gateway issues (HS256, no kid) with the key it
		// holds verifies against the ring: key verify in legacy mode.
		seedTok := jwt.New()
		_ = seedTok.Set(jwt.IssuedAtKey, clk.Now())
		_ = seedTok.Set(jwt.ExpirationKey, clk.Now().Add(time.Hour))
		signed, err := jwt.Sign(seedTok, jwt.WithKey(jwa.HS256(), g.key))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Verify(string(signed), clk.Now(), DefaultLeeway); err != nil {
			t.Fatalf("%s: a kid-less token from the seed's gateway: %v", what, err)
		}
	}
	ini, err := s.Init(ctx, InitOptions{Legacy: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(ini.Warnings, " "), "adopted secret is unsafe") {
		t.Fatalf("init warnings %v", ini.Warnings)
	}
	step("init")
	ring, _ := s.Ring(ctx)
	st, err := s.LegacyStatus(ctx, ring)
	if err != nil || st.Safe || !st.Matches || !strings.Contains(st.Problem, "another, 1-byte key") || strings.Contains(st.Problem, seed[:4]) {
		t.Fatalf("adopted digit-first secret not flagged: %+v %v", st, err)
	}
	legacyCheck := func() doctor.Result {
		for _, r := range Probe(s)(ctx) {
			if r.Check == "keys.legacy" {
				return r
			}
		}
		t.Fatal("no keys.legacy check for a legacy ring")
		return doctor.Result{}
	}
	if r := legacyCheck(); r.Status != doctor.Fail || r.Hint == "" {
		t.Fatalf("doctor on an unsafe legacy secret: %+v", r)
	}
	for i := range 3 {
		if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
			t.Fatal(err)
		}
		step("rotate")
		if i == 0 {
			ring, _ := s.Ring(ctx)
			if st, _ := s.LegacyStatus(ctx, ring); !st.Safe || !st.Matches || st.Problem != "" {
				t.Fatalf("after a rotation: %+v", st)
			}
			if r := legacyCheck(); r.Status != doctor.OK {
				t.Fatalf("doctor after a rotation: %+v", r)
			}
		}
	}
	_, err = s.Rollback(ctx, RollbackOptions{})
	var lr *LegacyRollbackError
	if err == nil || !errors.As(err, &lr) {
		t.Fatalf("legacy rollback: %v", err)
	}
	step("refused rollback")
	if _, err := s.Rotate(ctx, RotateOptions{Revoke: true}); err != nil {
		t.Fatal(err)
	}
	step("rotate --revoke")
	clk.Advance(3 * time.Hour)
	if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	step("rotate after retire_after")
	if _, err := s.Prune(ctx, PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	step("prune")
	// A ring rolled back by an older microctl has a next key that signed
	// before: the rotation must not write its secret again.
	re, _ := c.KVGet(ctx, s.RingKey())
	var r Ring
	if err := json.Unmarshal(re.Value, &r); err != nil {
		t.Fatal(err)
	}
	old := r.NextKey()
	old.ActivatedAt = ptr(clk.Now().Add(-time.Hour))
	b, _ := json.Marshal(&r)
	if _, err := c.API.KV().Put(&api.KVPair{Key: s.RingKey(), Value: b}, nil); err != nil {
		t.Fatal(err)
	}
	rot, err := s.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	step("rotate past a next key that signed before")
	if rot.Current == old.Kid || !strings.Contains(strings.Join(rot.Warnings, " "), "signed before") {
		t.Fatalf("rotation promoted %s again: %+v", old.Kid, rot)
	}
	if g.missed != 0 {
		t.Fatalf("the gateway missed %d changes", g.missed)
	}
	var doc legacyDoc
	e, _ := c.KVGet(ctx, DefaultLegacyPath)
	if err := json.Unmarshal(e.Value, &doc); err != nil || doc.Generation == 0 {
		t.Fatalf("legacy value %s has no generation", e.Value)
	}
	goConfigRead(t, c, "micro/config/")
}

// TestKidlessLegacyTokens: a token as the seed issues it (HS256, no kid,
// iat now) verifies against the ring's verifiable legacy secrets, and
// only in legacy mode.
func TestKidlessLegacyTokens(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	cur, prev := mustGen(t, HS256), mustGen(t, HS256)
	// What Store.KeySet builds in legacy mode: the secrets of the ring's
	// verifiable HS256 keys, with their retire_after.
	ks := &KeySet{Current: cur.kid, keys: map[string]verifyKey{
		cur.kid:  {kid: cur.kid, alg: HS256, key: cur.signer},
		prev.kid: {kid: prev.kid, alg: HS256, key: prev.signer, retireAfter: t0.Add(time.Hour)},
	}}
	seedToken := func(key []byte, iat, exp time.Time) string {
		tok := jwt.New()
		_ = tok.Set(jwt.IssuedAtKey, iat)
		_ = tok.Set(jwt.ExpirationKey, exp)
		_ = tok.Set("user_name", "alice")
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), key))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	curSecret, prevSecret := cur.signer.([]byte), prev.signer.([]byte)
	for _, tc := range []struct {
		name string
		tok  string
		at   time.Time
		want error
		kid  string
	}{
		{"current secret", seedToken(curSecret, t0, t0.Add(time.Hour)), t0, nil, cur.kid},
		{"previous secret within grace", seedToken(prevSecret, t0, t0.Add(2*time.Hour)), t0.Add(30 * time.Minute), nil, prev.kid},
		{"previous secret past retire_after", seedToken(prevSecret, t0, t0.Add(2*time.Hour)), t0.Add(61 * time.Minute), ErrRetired, ""},
		{"expired", seedToken(curSecret, t0, t0.Add(time.Minute)), t0.Add(time.Hour), ErrExpired, ""},
		{"forged with 9", seedToken([]byte("9"), t0, t0.Add(time.Hour)), t0, ErrSignature, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ks.Verify(tc.tok, tc.at, DefaultLeeway)
			if tc.want == nil {
				if err != nil || v.Kid != tc.kid {
					t.Fatalf("verify: %+v %v", v, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// Outside legacy mode (a set from a JWKS) a kid-less token is refused
	// before any cryptography.
	ed := mustGen(t, EdDSA)
	pub := keysetOf(t, &Ring{Schema: 1, Alg: EdDSA, MaxTokenTTL: 3600, Keys: []Key{{Kid: ed.kid, Alg: EdDSA, State: Current, CreatedAt: t0, ActivatedAt: ptr(t0)}}}, ed)
	if _, err := pub.Verify(seedToken(curSecret, t0, t0.Add(time.Hour)), t0, 0); !errors.Is(err, ErrNoKid) {
		t.Fatalf("kid-less token outside legacy mode: %v", err)
	}
}

// TestBackdatedForJWTGo: jwt-go v3.2.0 accepts a token while now >= iat
// and now >= nbf, with no leeway; microctl's tokens pass at a verifier
// whose clock is up to Backdate behind.
func TestBackdatedForJWTGo(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	m := mustGen(t, HS256)
	sg := signerOf(t, m, t0)
	tok, err := sg.Sign(SignOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iat int64 `json:"iat"`
		Nbf int64 `json:"nbf"`
		Exp int64 `json:"exp"`
	}
	parts := strings.Split(tok.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	// jwt-go v3.2.0 claims.go: verifyIat/verifyNbf are now >= iat/nbf.
	jwtGoAccepts := func(now time.Time) bool {
		return now.Unix() >= claims.Iat && now.Unix() >= claims.Nbf && now.Unix() <= claims.Exp
	}
	for _, behind := range []time.Duration{0, time.Second, Backdate} {
		if !jwtGoAccepts(t0.Add(-behind)) {
			t.Errorf("a jwt-go gateway %s behind rejects the token (iat %d, nbf %d)", behind, claims.Iat, claims.Nbf)
		}
	}
	if claims.Exp != t0.Add(time.Hour).Unix() || !tok.NotBefore.Equal(t0.Add(-Backdate)) || !tok.IssuedAt.Equal(t0) {
		t.Errorf("claims %+v, token %+v", claims, tok)
	}
}

// staticKV answers blocking queries from a fixed map: the first query of
// a key returns it at index 1, later ones block until the context ends.
type staticKV map[string][]byte

func (s staticKV) KVWatch(ctx context.Context, key string, index uint64, _ time.Duration) (*registry.KVEntry, uint64, error) {
	if index == 0 {
		if v, ok := s[key]; ok {
			return &registry.KVEntry{Key: key, Value: v, ModifyIndex: 1}, 1, nil
		}
		return nil, 1, nil
	}
	<-ctx.Done()
	return nil, index, ctx.Err()
}

// TestVerifierLegacySecret: a gateway on pkg/keys WithLegacySecret accepts
// kid-less tokens signed with the legacy secret, and still checks kid'd
// tokens against the JWKS; without the option a kid-less token is refused.
func TestVerifierLegacySecret(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	secret := "Kq3v0n9Zr5JxT2bLw8YcH1dMeP4sUaGf7oRiVkNjQtE"
	ed := mustGen(t, EdDSA)
	now := time.Now().UTC().Truncate(time.Second)
	ring := &Ring{Schema: 1, Alg: EdDSA, MaxTokenTTL: 3600, Keys: []Key{{Kid: ed.kid, Alg: EdDSA, State: Current, CreatedAt: now, ActivatedAt: ptr(now)}}}
	j, err := buildJWKS(ring, map[string]jwk.Key{ed.kid: ed.public}, now)
	if err != nil {
		t.Fatal(err)
	}
	jwksDoc, _ := json.Marshal(j)
	kv := staticKV{DefaultPath + "/jwks": jwksDoc, DefaultLegacyPath: legacyValue(secret, 7)}
	kidless := forge(t, []byte(secret))
	kidded, err := signerOf(t, ed, now).Sign(SignOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	v, err := StartVerifier(ctx, kv, WithLegacySecret())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := v.Verify(kidless); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("kid-less token never accepted: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := v.Verify(kidded.Token); err != nil {
		t.Fatalf("kid'd token: %v", err)
	}
	if _, err := v.Verify(forge(t, []byte("9"))); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged kid-less token: %v", err)
	}

	plain, err := StartVerifier(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Verify(kidless); !errors.Is(err, ErrNoKid) {
		t.Fatalf("without WithLegacySecret: %v", err)
	}
	if _, err := plain.Verify(kidded.Token); err != nil {
		t.Fatalf("kid'd token: %v", err)
	}
}
