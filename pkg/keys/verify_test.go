package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// keysetOf builds the public KeySet of mats the way a verifier reads it:
// through a JWKS document.
func keysetOf(t *testing.T, r *Ring, mats ...*material) *KeySet {
	t.Helper()
	pubs := map[string]jwk.Key{}
	for _, m := range mats {
		pubs[m.kid] = m.public
	}
	j, err := buildJWKS(r, pubs, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j)
	ks, err := ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func mustGen(t *testing.T, alg Alg) *material {
	t.Helper()
	m, err := generate(rand.Reader, alg, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func signerOf(t *testing.T, m *material, at time.Time) *Signer {
	t.Helper()
	k, err := jwk.Import(m.signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := decorate(k, m.kid, m.alg); err != nil {
		t.Fatal(err)
	}
	return &Signer{m: m, key: k, clock: func() time.Time { return at }, rand: rand.Reader}
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestVerify(t *testing.T) {
	ed, es, rs := mustGen(t, EdDSA), mustGen(t, ES256), mustGen(t, RS256)
	prevEd := mustGen(t, EdDSA)
	ring := &Ring{Schema: 1, Alg: EdDSA, MaxTokenTTL: 3600, Keys: []Key{
		{Kid: ed.kid, Alg: EdDSA, State: Current, CreatedAt: t0, ActivatedAt: ptr(t0)},
		{Kid: es.kid, Alg: ES256, State: Next, CreatedAt: t0},
		{Kid: rs.kid, Alg: RS256, State: Previous, CreatedAt: t0, RetireAfter: ptr(t0.Add(2 * time.Hour))},
		{Kid: prevEd.kid, Alg: EdDSA, State: Previous, CreatedAt: t0, RetireAfter: ptr(t0.Add(time.Minute))},
	}}
	ks := keysetOf(t, ring, ed, es, rs, prevEd)
	if got := len(ks.Kids()); got != 4 {
		t.Fatalf("JWKS has %d keys, want 4", got)
	}
	sign := func(m *material, at time.Time, o SignOptions) string {
		s, err := signerOf(t, m, at).Sign(o)
		if err != nil {
			t.Fatal(err)
		}
		return s.Token
	}
	raw := func(m *material, claims map[string]any) string {
		k, _ := jwk.Import(m.signer)
		_ = decorate(k, m.kid, m.alg)
		tok := jwt.New()
		for c, v := range claims {
			_ = tok.Set(c, v)
		}
		b, err := jwt.Sign(tok, jwt.WithKey(m.alg.jwa(), k))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	stranger := mustGen(t, EdDSA)
	// A token whose header claims ed's kid but is signed by another key.
	forged := func() string {
		s := signerOf(t, stranger, t0)
		_ = s.key.Set(jwk.KeyIDKey, ed.kid)
		tok, err := s.Sign(SignOptions{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Token
	}()
	// alg none: no signature at all.
	none := b64(map[string]string{"alg": "none", "kid": ed.kid}) + "." +
		b64(map[string]any{"sub": "x", "exp": t0.Add(time.Hour).Unix()}) + "."
	// alg/key mismatch: HS256 over the Ed25519 public key bytes (the
	// classic algorithm-confusion attack) under ed's kid.
	confusion := func() string {
		pub := ed.signer.(ed25519.PrivateKey).Public().(ed25519.PublicKey)
		tok := jwt.New()
		_ = tok.Set(jwt.ExpirationKey, t0.Add(time.Hour))
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, ed.kid)
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), []byte(pub), jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}()
	noExp := func() string {
		k, _ := jwk.Import(ed.signer)
		_ = decorate(k, ed.kid, EdDSA)
		tok := jwt.New()
		_ = tok.Set(jwt.SubjectKey, "forever")
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA(), k))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}()
	noKid := func() string {
		tok := jwt.New()
		_ = tok.Set(jwt.ExpirationKey, t0.Add(time.Hour))
		b, err := jwt.Sign(tok, jwt.WithKey(jwa.EdDSA(), ed.signer))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}()

	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error // nil: valid
	}{
		{"current EdDSA", sign(ed, t0, SignOptions{Subject: "alice", TTL: time.Hour}), t0, nil},
		{"next ES256 (published early)", sign(es, t0, SignOptions{TTL: time.Hour}), t0, nil},
		{"previous RS256 before retire_after", sign(rs, t0, SignOptions{TTL: time.Hour}), t0.Add(time.Hour), nil},
		{"previous past retire_after", sign(prevEd, t0, SignOptions{TTL: time.Hour}), t0.Add(2 * time.Minute), ErrRetired},
		{"expired beyond leeway", sign(ed, t0, SignOptions{TTL: time.Minute}), t0.Add(time.Minute + DefaultLeeway + time.Second), ErrExpired},
		{"expired within leeway", sign(ed, t0, SignOptions{TTL: time.Minute}), t0.Add(time.Minute + DefaultLeeway/2), nil},
		{"iat in the future", sign(ed, t0.Add(time.Hour), SignOptions{TTL: time.Hour}), t0, ErrIssuedInFuture},
		{"nbf in the future", raw(ed, map[string]any{"iat": t0, "nbf": t0.Add(time.Hour), "exp": t0.Add(2 * time.Hour)}), t0, ErrNotYetValid},
		{"nbf within leeway", raw(ed, map[string]any{"iat": t0, "nbf": t0.Add(DefaultLeeway / 2), "exp": t0.Add(2 * time.Hour)}), t0, nil},
		{"iat slightly ahead (clock skew)", sign(ed, t0.Add(10*time.Second), SignOptions{TTL: time.Hour}), t0, nil},
		{"unknown kid", sign(stranger, t0, SignOptions{TTL: time.Hour}), t0, ErrUnknownKid},
		{"forged signature", forged, t0, ErrSignature},
		{"alg none", none, t0, ErrAlgNone},
		{"alg confusion HS256 with a public key", confusion, t0, ErrAlgMismatch},
		{"no exp", noExp, t0, ErrNoExp},
		{"no kid", noKid, t0, ErrNoKid},
		{"garbage", "not.a.token", t0, ErrMalformed},
		{"two parts", "abc.def", t0, ErrMalformed},
		{"empty", "", t0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ks.Verify(tt.token, tt.at, DefaultLeeway)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if v.Kid == "" || v.ExpiresAt.IsZero() {
					t.Fatalf("verified without kid or exp: %+v", v)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var re *RejectedError
			if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "token rejected: ") {
				t.Fatalf("err %v is not a RejectedError", err)
			}
		})
	}
}

func TestSignClaims(t *testing.T) {
	m := mustGen(t, EdDSA)
	s := signerOf(t, m, t0)
	tok, err := s.Sign(SignOptions{Subject: "bob", TTL: 5 * time.Minute, Claims: map[string]any{"role": "admin", "n": 3}})
	if err != nil {
		t.Fatal(err)
	}
	ring := &Ring{Schema: 1, Alg: EdDSA, MaxTokenTTL: 3600, Keys: []Key{{Kid: m.kid, Alg: EdDSA, State: Current, CreatedAt: t0, ActivatedAt: ptr(t0)}}}
	v, err := keysetOf(t, ring, m).Verify(tok.Token, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.Subject != "bob" || v.Claims["role"] != "admin" || v.Claims["n"] != float64(3) || !v.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("verified = %+v", v)
	}
	if v.Claims["jti"] == "" || v.Claims["jti"] == nil {
		t.Error("no jti")
	}
	for _, c := range []string{"exp", "iat", "nbf"} {
		if _, err := s.Sign(SignOptions{Claims: map[string]any{c: 1}}); err == nil {
			t.Errorf("claim %s accepted by hand", c)
		}
	}
}

func TestKidIsRFC7638Thumbprint(t *testing.T) {
	// RFC 8037 appendix A.3: the thumbprint of its Ed25519 public key.
	pub, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	k, err := jwk.Import(ed25519.PublicKey(pub))
	if err != nil {
		t.Fatal(err)
	}
	kid, err := thumbprint(k)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; kid != want {
		t.Fatalf("kid = %s, want %s", kid, want)
	}
}

func TestPrivateDocRoundTrip(t *testing.T) {
	for _, alg := range Algs {
		t.Run(string(alg), func(t *testing.T) {
			m := mustGen(t, alg)
			d, err := m.doc(t0)
			if err != nil {
				t.Fatal(err)
			}
			back, err := d.material()
			if err != nil {
				t.Fatal(err)
			}
			if back.kid != m.kid {
				t.Fatalf("kid %s after round trip, want %s", back.kid, m.kid)
			}
			if s := (&material{kid: "k", signer: m.signer}).String(); strings.Contains(s, d.PEM+d.Secret) || !strings.Contains(s, "REDACTED") {
				t.Fatalf("material prints its secret: %s", s)
			}
			// A doc whose kid is not its key's thumbprint is refused.
			d.Kid = "someone-else"
			if _, err := d.material(); err == nil {
				t.Fatal("mismatched kid accepted")
			}
		})
	}
}

func TestParseAlg(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Alg
		ok   bool
	}{{"EdDSA", EdDSA, true}, {"es256", ES256, true}, {"RS256", RS256, true}, {"HS256", HS256, true}, {"RS512", "", false}, {"none", "", false}, {"", "", false}} {
		got, err := ParseAlg(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseAlg(%q) = %q, %v", tt.in, got, err)
		}
	}
	if err := ValidateBits(RS256, 1024); err == nil {
		t.Error("1024-bit RSA accepted")
	}
	if err := ValidateBits(EdDSA, 2048); err == nil {
		t.Error("--bits accepted for EdDSA")
	}
}

func TestJWKSNeverHoldsSecrets(t *testing.T) {
	hs, ed := mustGen(t, HS256), mustGen(t, EdDSA)
	ring := &Ring{Schema: 1, Alg: HS256, LegacyPath: "x", MaxTokenTTL: 3600, Keys: []Key{
		{Kid: hs.kid, Alg: HS256, State: Current, CreatedAt: t0, ActivatedAt: ptr(t0)},
		{Kid: ed.kid, Alg: EdDSA, State: Next, CreatedAt: t0},
	}}
	j, err := buildJWKS(ring, map[string]jwk.Key{hs.kid: hs.public, ed.kid: ed.public}, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j)
	if strings.Contains(string(b), `"k"`) || strings.Contains(string(b), string(hs.signer.([]byte))) {
		t.Fatalf("JWKS leaks the HS256 secret: %s", b)
	}
	if strings.Contains(string(b), `"d"`) {
		t.Fatalf("JWKS holds a private part: %s", b)
	}
	// A JWKS that does hold a private or secret key is refused outright.
	priv, _ := jwk.Import(ed.signer)
	_ = decorate(priv, ed.kid, EdDSA)
	pb, _ := json.Marshal(priv)
	if _, err := ParseJWKS([]byte(`{"keys":[` + string(pb) + `]}`)); err == nil {
		t.Fatal("a JWKS with a private key was accepted")
	}
}

func TestRequireObject(t *testing.T) {
	for in, ok := range map[string]bool{
		`{}`: true, `{"a":1}`: true, ` {"a":[1]} `: true,
		`[]`: false, `"str"`: false, `null`: false, ``: false, `-----BEGIN PRIVATE KEY-----`: false,
		`{"a":1} {"b":2}`: false, `{"a":1`: false, `42`: false,
	} {
		if err := requireObject([]byte(in)); (err == nil) != ok {
			t.Errorf("requireObject(%q) = %v", in, err)
		}
	}
}
