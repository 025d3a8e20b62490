package keys

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Every value under the ring's path is outside input: anyone with write
// access to the prefix (or a bad restore) can put anything there. The
// parsers must never panic and never accept a ring that fails Validate.

func seedRing(f *testing.F) (*Ring, []byte, []byte, *material) {
	cur, next := mustGenF(f, EdDSA), mustGenF(f, ES256)
	r := &Ring{Schema: 1, Alg: EdDSA, MaxTokenTTL: 3600, Generation: 3, UpdatedAt: t0, Keys: []Key{
		{Kid: cur.kid, Alg: EdDSA, State: Current, CreatedAt: t0, ActivatedAt: ptr(t0)},
		{Kid: next.kid, Alg: ES256, State: Next, CreatedAt: t0},
	}}
	rb, _ := json.Marshal(r)
	j, err := buildJWKS(r, map[string]jwk.Key{cur.kid: cur.public, next.kid: next.public}, t0)
	if err != nil {
		f.Fatal(err)
	}
	jb, _ := json.Marshal(j)
	return r, rb, jb, cur
}

func mustGenF(f *testing.F, alg Alg) *material {
	m, err := generate(nil, alg, 0)
	if err != nil {
		f.Fatal(err)
	}
	return m
}

func FuzzParseRing(f *testing.F) {
	_, rb, _, _ := seedRing(f)
	f.Add(rb)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema":1,"keys":null}`))
	f.Add([]byte(`"-----BEGIN PRIVATE KEY-----"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRing(b)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRing accepted an invalid ring: %v", err)
		}
		if r.CurrentKey() == nil {
			t.Fatal("accepted a ring without a current key")
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	_, _, jb, _ := seedRing(f)
	f.Add(jb)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"a","alg":"HS256"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"none","kid":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for _, k := range ks.keys {
			if k.kid == "" || k.alg.Symmetric() {
				t.Fatalf("accepted key %+v", k)
			}
		}
	})
}

func FuzzPrivateDoc(f *testing.F) {
	cur := mustGenF(f, EdDSA)
	d, _ := cur.doc(t0)
	b, _ := json.Marshal(d)
	f.Add(b)
	f.Add([]byte(`{"kid":"a","alg":"HS256","secret":"short"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d privateDoc
		if decodeObject(b, &d) != nil {
			return
		}
		m, err := d.material()
		if err == nil && m.kid != d.Kid {
			t.Fatalf("material %s accepted under kid %s", m.kid, d.Kid)
		}
	})
}

func FuzzVerify(f *testing.F) {
	r, _, jb, cur := seedRing(f)
	_ = r
	ks, err := ParseJWKS(jb)
	if err != nil {
		f.Fatal(err)
	}
	k, _ := jwk.Import(cur.signer)
	_ = decorate(k, cur.kid, cur.alg)
	sg := &Signer{m: cur, key: k, clock: func() time.Time { return t0 }, rand: zeroReader{}}
	tok, err := sg.Sign(SignOptions{TTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok.Token)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ks.Verify(s, t0, DefaultLeeway)
		if err == nil && (v.Kid != cur.kid || v.ExpiresAt.IsZero()) {
			t.Fatalf("verified a token with kid %q", v.Kid)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
