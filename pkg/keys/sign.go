package keys

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// DefaultTokenTTL is the lifetime of a token from `key sign` unless --ttl.
const DefaultTokenTTL = 15 * time.Minute

// Backdate is how far before the signing time a token's iat and nbf lie.
// jwt-go v3.2.0, which the seed's gateway verifies with, compares both
// with zero leeway (claims.go: verifyIat and verifyNbf are now >= iat and
// now >= nbf, and MapClaims/StandardClaims.Valid check both), so a gateway
// whose clock is one second behind the signer's would reject a token made
// that second. exp is not moved: a token lives its full TTL from signing.
const Backdate = 30 * time.Second

// SignOptions are the contents of a token.
type SignOptions struct {
	Subject string
	TTL     time.Duration // default DefaultTokenTTL
	// Claims are added as they are; exp, iat and nbf are set from the
	// clock and TTL and may not be given here.
	Claims map[string]any
	// Force records a TTL longer than the ring's rotation period.
	Force bool
}

// Signed is a token and the facts about it.
type Signed struct {
	Token     string    `json:"-"` // printed on its own, never inside other output
	Kid       string    `json:"kid"`
	Alg       Alg       `json:"alg"`
	IssuedAt  time.Time `json:"issued_at"`  // when it was signed
	NotBefore time.Time `json:"not_before"` // its iat and nbf: IssuedAt - Backdate
	ExpiresAt time.Time `json:"expires_at"`
	// RecordedTTL is true when this TTL was longer than any before and
	// was written to the ring, so rotations keep the key long enough.
	RecordedTTL bool `json:"recorded_ttl"`
}

// Signer signs with one key: the ring's current key when it was made.
type Signer struct {
	m     *material
	key   jwk.Key
	clock func() time.Time
	rand  io.Reader
}

// Kid is the key the signer signs with.
func (sg *Signer) Kid() string { return sg.m.kid }

// Signer reads the current key (the ring and that one private key, not
// the whole prefix) and returns a signer for it. The key stays the same
// for the signer's life; make a new one to follow rotations.
func (s *Store) Signer(ctx context.Context) (*Signer, error) {
	ring, err := s.Ring(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.checkSealing(ring); err != nil {
		return nil, err
	}
	cur := ring.CurrentKey()
	e, err := s.kv.KVGet(ctx, s.PrivateKey(cur.Kid))
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, &BrokenError{Path: s.o.Path, Kid: cur.Kid, Key: s.PrivateKey(cur.Kid)}
	}
	var d privateDoc
	if err := decodeObject(e.Value, &d); err != nil {
		return nil, &CorruptError{Key: e.Key, Err: err}
	}
	if d.Kid != cur.Kid {
		return nil, &CorruptError{Key: e.Key, Err: fmt.Errorf("holds kid %q", d.Kid)}
	}
	m, err := s.openDoc(d)
	if err != nil {
		var sealed *SealedError
		var wrong *WrongKEKError
		if errors.As(err, &sealed) || errors.As(err, &wrong) {
			return nil, err
		}
		return nil, &CorruptError{Key: e.Key, Err: err}
	}
	k, err := jwk.Import(m.signer)
	if err != nil {
		return nil, err
	}
	if err := decorate(k, m.kid, m.alg); err != nil {
		return nil, err
	}
	return &Signer{m: m, key: k, clock: s.o.Clock, rand: s.o.Rand}, nil
}

// Sign makes a token with the current key. A TTL longer than the ring has
// ever covered is first recorded in the ring (under the lock), so that no
// rotation can retire the key before this token expires.
func (s *Store) Sign(ctx context.Context, o SignOptions) (*Signed, error) {
	if o.TTL == 0 {
		o.TTL = DefaultTokenTTL
	}
	if err := checkClaims(o); err != nil {
		return nil, err
	}
	if err := s.checkTTLPolicy(ctx, o.TTL, o.Force); err != nil {
		return nil, err
	}
	recorded, err := s.RecordTTL(ctx, o.TTL)
	if err != nil {
		return nil, err
	}
	sg, err := s.Signer(ctx)
	if err != nil {
		return nil, err
	}
	out, err := sg.Sign(o)
	if err != nil {
		return nil, err
	}
	out.RecordedTTL = recorded
	return out, nil
}

func checkClaims(o SignOptions) error {
	if o.TTL <= 0 {
		return errors.New("--ttl must be positive")
	}
	for _, c := range []string{jwt.ExpirationKey, jwt.IssuedAtKey, jwt.NotBeforeKey} {
		if _, ok := o.Claims[c]; ok {
			return fmt.Errorf("claim %q is set from the clock and --ttl, not by hand", c)
		}
	}
	return nil
}

// Sign makes a token: iat and nbf Backdate before now, exp now+TTL, a random jti, the
// subject and claims; the header carries the kid and alg.
func (sg *Signer) Sign(o SignOptions) (*Signed, error) {
	if o.TTL == 0 {
		o.TTL = DefaultTokenTTL
	}
	if err := checkClaims(o); err != nil {
		return nil, err
	}
	now := sg.clock().UTC().Truncate(time.Second)
	t := jwt.New()
	set := func(k string, v any) error {
		if err := t.Set(k, v); err != nil {
			return fmt.Errorf("claim %q: %w", k, err)
		}
		return nil
	}
	jti := make([]byte, 16)
	if _, err := io.ReadFull(sg.rand, jti); err != nil {
		return nil, err
	}
	for k, v := range o.Claims {
		if err := set(k, v); err != nil {
			return nil, err
		}
	}
	nbf := now.Add(-Backdate)
	for k, v := range map[string]any{jwt.IssuedAtKey: nbf, jwt.NotBeforeKey: nbf, jwt.ExpirationKey: now.Add(o.TTL)} {
		if err := set(k, v); err != nil {
			return nil, err
		}
	}
	if _, ok := o.Claims[jwt.JwtIDKey]; !ok {
		if err := set(jwt.JwtIDKey, hex.EncodeToString(jti)); err != nil {
			return nil, err
		}
	}
	if o.Subject != "" {
		if err := set(jwt.SubjectKey, o.Subject); err != nil {
			return nil, err
		}
	}
	b, err := jwt.Sign(t, jwt.WithKey(sg.m.alg.jwa(), sg.key))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return &Signed{Token: string(b), Kid: sg.m.kid, Alg: sg.m.alg, IssuedAt: now, NotBefore: nbf, ExpiresAt: now.Add(o.TTL)}, nil
}

// KeySet returns the keys `key verify` checks a token against: the public
// JWKS, and in legacy mode the HS256 secrets of the ring's verifiable keys
// (which only a token allowed to read private keys can see).
func (s *Store) KeySet(ctx context.Context) (*KeySet, *Ring, error) {
	ring, err := s.Ring(ctx)
	if err != nil {
		return nil, nil, err
	}
	doc, err := s.JWKSDoc(ctx)
	if err != nil {
		return nil, nil, err
	}
	ks, err := ParseJWKS(doc)
	if err != nil {
		return nil, nil, &CorruptError{Key: s.JWKSKey(), Err: err}
	}
	now := s.now()
	for _, k := range ring.Keys {
		if !k.Alg.Symmetric() || !k.Verifiable(now) {
			continue
		}
		e, err := s.kv.KVGet(ctx, s.PrivateKey(k.Kid))
		if err != nil {
			return nil, nil, err
		}
		if e == nil {
			continue
		}
		var d privateDoc
		if err := decodeObject(e.Value, &d); err != nil {
			return nil, nil, &CorruptError{Key: e.Key, Err: err}
		}
		m, err := d.material()
		if err != nil {
			return nil, nil, &CorruptError{Key: e.Key, Err: err}
		}
		vk := verifyKey{kid: k.Kid, alg: HS256, key: m.signer}
		if k.RetireAfter != nil {
			vk.retireAfter = *k.RetireAfter
		}
		ks.keys[k.Kid] = vk
	}
	return ks, ring, nil
}
