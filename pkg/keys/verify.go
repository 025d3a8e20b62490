package keys

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Reasons a token is rejected; match them with errors.Is.
var (
	ErrMalformed      = errors.New("malformed token")
	ErrAlgNone        = errors.New(`alg "none" is never accepted`)
	ErrNoKid          = errors.New("token has no kid")
	ErrUnknownKid     = errors.New("unknown kid")
	ErrAlgMismatch    = errors.New("alg does not match the key")
	ErrRetired        = errors.New("key is retired")
	ErrSignature      = errors.New("bad signature")
	ErrExpired        = errors.New("token expired")
	ErrNotYetValid    = errors.New("token not valid yet (nbf)")
	ErrIssuedInFuture = errors.New("token issued in the future (iat)")
	ErrNoExp          = errors.New("token has no exp: a token that never expires outlives every key rotation")
	ErrNoKeys         = errors.New("no verification keys loaded")
)

// RejectedError says why a token was not accepted. Reason is one of the
// Err* values above.
type RejectedError struct {
	Kid    string
	Reason error
	Detail string
}

func (e *RejectedError) Error() string {
	s := "token rejected: " + e.Reason.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}
func (e *RejectedError) Unwrap() error { return e.Reason }

func reject(kid string, reason error, format string, a ...any) error {
	return &RejectedError{Kid: kid, Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
const DefaultLeeway = 30 * time.Second

type verifyKey struct {
	kid         string
	alg         Alg
	key         any // a public jwk.Key, or []byte for HS256
	retireAfter time.Time
}

// KeySet is the set of keys a token may be verified with, as read from a
// JWKS document (or, for `key verify` in legacy mode, from the ring).
type KeySet struct {
	keys       map[string]verifyKey
	Current    string
	Next       string
	Generation int64
}

// Kids lists the kids in the set, sorted.
func (ks *KeySet) Kids() []string {
	if ks == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(ks.keys))
}

// Has reports whether kid is in the set.
func (ks *KeySet) Has(kid string) bool {
	_, ok := ks.keys[kid]
	return ok
}

// Verified is what a valid token said.
type Verified struct {
	Kid       string         `json:"kid"`
	Alg       Alg            `json:"alg"`
	Subject   string         `json:"subject,omitempty"`
	IssuedAt  *time.Time     `json:"issued_at,omitempty"`
	NotBefore *time.Time     `json:"not_before,omitempty"`
	ExpiresAt time.Time      `json:"expires_at"`
	Claims    map[string]any `json:"claims"`
}

// Verify checks token against the set at now: the header names a kid in the
// set and the alg of that key (alg none and any other alg are refused before
// any cryptography), the key is not retired, the signature holds, and exp
// (required), nbf and iat are within leeway.
func (ks *KeySet) Verify(token string, now time.Time, leeway time.Duration) (*Verified, error) {
	if ks == nil || len(ks.keys) == 0 {
		return nil, reject("", ErrNoKeys, "")
	}
	token = strings.TrimSpace(token)
	if strings.Count(token, ".") != 2 {
		return nil, reject("", ErrMalformed, "not a compact JWS (three dot-separated parts)")
	}
	msg, err := jws.ParseString(token)
	if err != nil {
		return nil, reject("", ErrMalformed, "%v", err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, reject("", ErrMalformed, "%d signatures", len(sigs))
	}
	hdr := sigs[0].ProtectedHeaders()
	a, ok := hdr.Algorithm()
	if !ok || a.String() == "" {
		return nil, reject("", ErrMalformed, "no alg in the header")
	}
	if strings.EqualFold(a.String(), "none") {
		return nil, reject("", ErrAlgNone, "")
	}
	kid, _ := hdr.KeyID()
	if kid == "" {
		if a.String() == string(HS256) {
			if legacy := ks.legacyKeys(); len(legacy) > 0 {
				return ks.verifyKidless(token, legacy, now, leeway)
			}
		}
		return nil, reject("", ErrNoKid, "")
	}
	k, ok := ks.keys[kid]
	if !ok {
		return nil, reject(kid, ErrUnknownKid, "%s is not in the key set", kid)
	}
	if a.String() != string(k.alg) {
		return nil, reject(kid, ErrAlgMismatch, "header says %s, key %s is %s", a.String(), kid, k.alg)
	}
	return ks.verifyWith(token, k, now, leeway)
}

// legacyKeys are the set's HS256 secrets, the current one first: a set has
// them only in legacy mode (Store.KeySet), never from a JWKS.
func (ks *KeySet) legacyKeys() []verifyKey {
	var out []verifyKey
	for _, kid := range ks.Kids() {
		if k := ks.keys[kid]; k.alg == HS256 {
			if kid == ks.Current {
				out = append([]verifyKey{k}, out...)
			} else {
				out = append(out, k)
			}
		}
	}
	return out
}

// verifyKidless checks a token without a kid, as the seed's gateway issues
// them, against each legacy secret. The first secret whose signature holds
// decides: its verdict (expired, not yet valid, ...) is the answer.
func (ks *KeySet) verifyKidless(token string, legacy []verifyKey, now time.Time, leeway time.Duration) (*Verified, error) {
	for _, k := range legacy {
		if _, err := jws.Verify([]byte(token), jws.WithKey(HS256.jwa(), k.key)); err != nil {
			continue
		}
		return ks.verifyWith(token, k, now, leeway)
	}
	return nil, reject("", ErrSignature, "the token has no kid, and none of the ring's %d legacy HS256 secrets verifies it", len(legacy))
}

func (ks *KeySet) verifyWith(token string, k verifyKey, now time.Time, leeway time.Duration) (*Verified, error) {
	kid := k.kid
	if !k.retireAfter.IsZero() && !now.Before(k.retireAfter) {
		return nil, reject(kid, ErrRetired, "%s retired at %s", kid, k.retireAfter.UTC().Format(time.RFC3339))
	}
	clock := jwt.ClockFunc(func() time.Time { return now })
	tok, err := jwt.ParseString(token,
		jwt.WithKey(k.alg.jwa(), k.key),
		jwt.WithValidate(true),
		jwt.WithAcceptableSkew(leeway),
		jwt.WithClock(clock),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
	)
	if err != nil {
		return nil, classify(kid, err)
	}
	v := &Verified{Kid: kid, Alg: k.alg}
	v.Subject, _ = tok.Subject()
	v.ExpiresAt, _ = tok.Expiration()
	if t, ok := tok.IssuedAt(); ok {
		v.IssuedAt = &t
	}
	if t, ok := tok.NotBefore(); ok {
		v.NotBefore = &t
	}
	// The payload is verified by now; decoding it directly keeps every
	// claim's JSON type as the issuer wrote it.
	parts := strings.Split(token, ".")
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
		_ = json.Unmarshal(b, &v.Claims)
	}
	return v, nil
}

func classify(kid string, err error) error {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return reject(kid, ErrExpired, "")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return reject(kid, ErrNotYetValid, "")
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return reject(kid, ErrIssuedInFuture, "")
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return reject(kid, ErrNoExp, "")
	case errors.Is(err, jwt.ValidateError()):
		return reject(kid, ErrMalformed, "%v", err)
	}
	return reject(kid, ErrSignature, "%v", err)
}
