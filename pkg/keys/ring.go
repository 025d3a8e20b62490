package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// State is where a key is in its life.
type State string

const (
	// Next keys are published in the JWKS but do not sign yet, so every
	// verifier knows them before the first token signed with them exists.
	Next State = "next"
	// Current is the one key that signs.
	Current State = "current"
	// Previous keys signed once and still verify tokens until RetireAfter.
	Previous State = "previous"
	// Retired keys verify nothing: past RetireAfter, or revoked. They are
	// gone from the JWKS and their private half is deleted; prune drops
	// the record.
	Retired State = "retired"
)

// SchemaVersion is the ring document's format version.
const SchemaVersion = 1

// Key is the public record of one key in the ring. It carries no secret.
type Key struct {
	Kid           string     `json:"kid"`
	Alg           Alg        `json:"alg"`
	State         State      `json:"state"`
	Bits          int        `json:"bits,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ActivatedAt   *time.Time `json:"activated_at,omitempty"`   // became current
	DeactivatedAt *time.Time `json:"deactivated_at,omitempty"` // stopped signing
	RetireAfter   *time.Time `json:"retire_after,omitempty"`   // previous keys: verifiable until then
	RetiredAt     *time.Time `json:"retired_at,omitempty"`
	Revoked       bool       `json:"revoked,omitempty"`
}

// Verifiable reports whether tokens signed with k are accepted at now.
func (k Key) Verifiable(now time.Time) bool {
	switch k.State {
	case Next, Current:
		return true
	case Previous:
		return k.RetireAfter == nil || now.Before(*k.RetireAfter)
	}
	return false
}

// Ring is the document at <path>/ring: every key's public facts and the
// ring's policy. It holds no secret, so gateways may read it.
type Ring struct {
	Schema int `json:"schema"`
	// Alg and Bits are used for new keys unless a rotation says otherwise.
	Alg  Alg `json:"alg"`
	Bits int `json:"bits,omitempty"`
	// MaxTokenTTL is the longest lifetime a token signed from this ring
	// may have, as configured; IssuedMaxTTL is the longest `key sign`
	// actually issued. A rotation's grace must cover both.
	MaxTokenTTL  Seconds `json:"max_token_ttl_seconds"`
	IssuedMaxTTL Seconds `json:"issued_max_ttl_seconds,omitempty"`
	// RotationPeriod is how old the current key may get before doctor
	// warns.
	RotationPeriod Seconds `json:"rotation_period_seconds,omitempty"`
	// LegacyPath, when set, is a {"key": "<secret>"} value kept equal to
	// the current HS256 secret for gateways that read one shared secret.
	LegacyPath string `json:"legacy_path,omitempty"`
	// Sealed, when set, is the id of the KEK every private key of the
	// ring is sealed under (seal.go).
	Sealed string `json:"sealed,omitempty"`
	// Generation counts the writes to the ring; read-back compares it.
	Generation int64     `json:"generation"`
	UpdatedAt  time.Time `json:"updated_at"`
	UpdatedBy  string    `json:"updated_by,omitempty"`
	Keys       []Key     `json:"keys"`
}

// Seconds is a duration stored as whole seconds in JSON.
type Seconds int64

// Duration converts it.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// SecondsOf rounds d up to whole seconds.
func SecondsOf(d time.Duration) Seconds {
	return Seconds((d + time.Second - 1) / time.Second)
}

// RequiredGrace is how long a key must stay verifiable after it stops
// signing: the longest token lifetime configured or issued.
func (r *Ring) RequiredGrace() time.Duration {
	return max(r.MaxTokenTTL, r.IssuedMaxTTL).Duration()
}

// Find returns the key with kid, or nil.
func (r *Ring) Find(kid string) *Key {
	for i := range r.Keys {
		if r.Keys[i].Kid == kid {
			return &r.Keys[i]
		}
	}
	return nil
}

// InState returns the keys in state s, newest first.
func (r *Ring) InState(s State) []*Key {
	var out []*Key
	for i := range r.Keys {
		if r.Keys[i].State == s {
			out = append(out, &r.Keys[i])
		}
	}
	slices.SortStableFunc(out, func(a, b *Key) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

// CurrentKey is the signing key, or nil in a broken ring.
func (r *Ring) CurrentKey() *Key {
	if ks := r.InState(Current); len(ks) > 0 {
		return ks[0]
	}
	return nil
}

// NextKey is the published, not yet signing key, or nil.
func (r *Ring) NextKey() *Key {
	if ks := r.InState(Next); len(ks) > 0 {
		return ks[0]
	}
	return nil
}

func (r *Ring) clone() *Ring {
	b, _ := json.Marshal(r)
	var c Ring
	_ = json.Unmarshal(b, &c)
	return &c
}

// Validate checks the ring's own consistency: one current key, at most one
// next, unique kids, known algorithms and states, times that make sense.
func (r *Ring) Validate() error {
	if r.Schema != SchemaVersion {
		return fmt.Errorf("schema %d: this microctl understands %d", r.Schema, SchemaVersion)
	}
	if _, err := ParseAlg(string(r.Alg)); err != nil {
		return fmt.Errorf("alg: %w", err)
	}
	if r.MaxTokenTTL <= 0 {
		return errors.New("max_token_ttl_seconds must be positive")
	}
	seen := map[string]bool{}
	counts := map[State]int{}
	for _, k := range r.Keys {
		if k.Kid == "" {
			return errors.New("a key has no kid")
		}
		if seen[k.Kid] {
			return fmt.Errorf("kid %s appears twice", k.Kid)
		}
		seen[k.Kid] = true
		if _, err := ParseAlg(string(k.Alg)); err != nil {
			return fmt.Errorf("key %s: %w", k.Kid, err)
		}
		switch k.State {
		case Next, Current, Previous, Retired:
		default:
			return fmt.Errorf("key %s: unknown state %q", k.Kid, k.State)
		}
		if k.State == Previous && k.RetireAfter == nil {
			return fmt.Errorf("key %s: previous key without retire_after", k.Kid)
		}
		if k.State == Current && k.ActivatedAt == nil {
			return fmt.Errorf("key %s: current key without activated_at", k.Kid)
		}
		counts[k.State]++
	}
	if counts[Current] != 1 {
		return fmt.Errorf("%d current keys: a ring has exactly one", counts[Current])
	}
	if counts[Next] > 1 {
		return fmt.Errorf("%d next keys: a ring has at most one", counts[Next])
	}
	if r.LegacyPath == "" && slices.ContainsFunc(r.Keys, func(k Key) bool { return k.Alg == HS256 && k.State != Retired }) {
		return errors.New("HS256 keys outside legacy mode")
	}
	return nil
}

// JWKS is the document at <path>/jwks: a standard JSON Web Key Set (RFC
// 7517) of every verifiable asymmetric key, public halves only, plus
// members that RFC 7517 section 5 lets a set carry and that other readers
// ignore: which key is current and next, and when each previous key
// retires. A verifier needs this one value and nothing else.
type JWKS struct {
	Keys        []json.RawMessage    `json:"keys"`
	Current     string               `json:"current,omitempty"`
	Next        string               `json:"next,omitempty"`
	RetireAfter map[string]time.Time `json:"retire_after,omitempty"`
	Generation  int64                `json:"generation"`
}

// buildJWKS publishes every verifiable key of r at now. HS256 secrets are
// never published: a shared secret in a JWKS would be a leak.
func buildJWKS(r *Ring, pubs map[string]jwk.Key, now time.Time) (*JWKS, error) {
	j := &JWKS{Keys: []json.RawMessage{}, Generation: r.Generation, RetireAfter: map[string]time.Time{}}
	for _, k := range r.Keys {
		if !k.Verifiable(now) {
			continue
		}
		switch k.State {
		case Current:
			j.Current = k.Kid
		case Next:
			j.Next = k.Kid
		}
		if k.RetireAfter != nil {
			j.RetireAfter[k.Kid] = k.RetireAfter.UTC()
		}
		if k.Alg.Symmetric() {
			continue
		}
		pub, ok := pubs[k.Kid]
		if !ok {
			return nil, fmt.Errorf("no public key for %s", k.Kid)
		}
		b, err := json.Marshal(pub)
		if err != nil {
			return nil, err
		}
		j.Keys = append(j.Keys, b)
	}
	if len(j.RetireAfter) == 0 {
		j.RetireAfter = nil
	}
	return j, nil
}

// decodeObject unmarshals a value that must be one JSON object (go-config's
// rule for everything under its prefix), rejecting unknown fields so a typo
// or a foreign document is reported rather than half-read.
func decodeObject(b []byte, v any) error {
	if err := requireObject(b); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// requireObject reports whether b is exactly one JSON object, which is what
// go-config's Consul source needs of every value under its prefix.
func requireObject(b []byte) error {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		if len(bytes.TrimSpace(b)) == 0 {
			return errors.New("empty value, not a JSON object")
		}
		return errors.New("not a JSON object")
	}
	if m == nil {
		return errors.New("null, not a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// ParseRing decodes and validates a ring document.
func ParseRing(b []byte) (*Ring, error) {
	var r Ring
	if err := decodeObject(b, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// ParseJWKS decodes a JWKS document into a KeySet for verification. Every
// key must carry a kid and an alg it can verify; a key without them would
// let a token choose how it is checked.
func ParseJWKS(b []byte) (*KeySet, error) {
	var j JWKS
	if err := requireObject(b); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	ks := &KeySet{keys: map[string]verifyKey{}, Current: j.Current, Next: j.Next, Generation: j.Generation}
	for i, raw := range j.Keys {
		k, err := jwk.ParseKey(raw)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if priv, err := jwk.IsPrivateKey(k); err != nil || priv {
			// A private or symmetric key in the public set is a leak
			// upstream; refuse to use it rather than quietly accept.
			return nil, fmt.Errorf("keys[%d]: not a public key (the JWKS must never hold private or secret keys)", i)
		}
		kid, ok := k.KeyID()
		if !ok || kid == "" {
			return nil, fmt.Errorf("keys[%d]: no kid", i)
		}
		a, ok := k.Algorithm()
		if !ok {
			return nil, fmt.Errorf("key %s: no alg", kid)
		}
		alg, err := ParseAlg(a.String())
		if err != nil || alg.Symmetric() {
			return nil, fmt.Errorf("key %s: alg %q cannot verify", kid, a.String())
		}
		if _, dup := ks.keys[kid]; dup {
			return nil, fmt.Errorf("kid %s appears twice", kid)
		}
		vk := verifyKey{kid: kid, alg: alg, key: k}
		if t, ok := j.RetireAfter[kid]; ok {
			vk.retireAfter = t
		}
		ks.keys[kid] = vk
	}
	return ks, nil
}
