package keys

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// BrokenError means the ring's current key has no private key stored, so
// nothing can sign with it. The way out is a rotation: the next key (which
// has its private key) signs from then on, and the broken key stays
// verifiable from the public half the JWKS still holds (or, with --revoke,
// is retired at once).
type BrokenError struct {
	Path string
	Kid  string
	Key  string // the KV key of the missing private key
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("the key ring at %s is broken: the current key %s has no private key at %s, so nothing can sign", e.Path, e.Kid, e.Key)
}

// Hint says what to do about it.
func (e *BrokenError) Hint() string {
	return "run microctl key rotate --path " + e.Path + ": the next key signs from then on; add --revoke --yes if the key leaked"
}

// Health is what `key show` and `key prune` say about a ring's private keys.
type Health struct {
	// Missing are kids of keys that need a private key (next, current)
	// or may still verify (previous) and have none stored.
	Missing []string `json:"missing,omitempty"`
	// Broken is set when the current key is among them: signing fails
	// until a rotation.
	Broken string `json:"broken,omitempty"`
	// Unknown is set when the token may not list the private keys, so
	// nothing can be said about them.
	Unknown string `json:"unknown,omitempty"`
}

// Warning is a one-line statement of a broken ring, or "".
func (h Health) Warning(path string) string {
	if h.Broken == "" {
		return ""
	}
	e := &BrokenError{Path: path, Kid: h.Broken, Key: path + "/private/" + h.Broken}
	return e.Error() + "; way out: " + e.Hint()
}

// keyLister is the optional Backend method Health uses; *registry.Client
// has it.
type keyLister interface {
	KVKeyListing(ctx context.Context, prefix string) ([]string, bool, error)
}

// Health lists which of the ring's keys have no private key. It reads the
// names under <path>/private/, never a value, so a token that may list but
// not read private keys can run it; a token that may not list them gets
// Unknown rather than a false "broken".
func (s *Store) Health(ctx context.Context, ring *Ring) (Health, error) {
	var h Health
	kl, ok := s.kv.(keyLister)
	if !ok {
		h.Unknown = "the backend cannot list keys"
		return h, nil
	}
	names, filtered, err := kl.KVKeyListing(ctx, s.PrivateKey(""))
	if err != nil {
		h.Unknown = err.Error()
		return h, nil
	}
	if filtered {
		h.Unknown = "Consul hid some private keys from this token"
		return h, nil
	}
	have := map[string]bool{}
	for _, n := range names {
		have[strings.TrimPrefix(n, s.PrivateKey(""))] = true
	}
	for _, k := range ring.Keys {
		if k.State == Retired || have[k.Kid] {
			continue
		}
		h.Missing = append(h.Missing, k.Kid)
		if k.State == Current {
			h.Broken = k.Kid
		}
	}
	slices.Sort(h.Missing)
	return h, nil
}

// warnBroken adds a warning to res when the ring is broken: prune cannot
// repair a missing current key, only a rotation can, and says so.
func (s *Store) warnBroken(ctx context.Context, res *Result) {
	ring, err := s.Ring(ctx)
	if err != nil {
		return
	}
	h, _ := s.Health(ctx, ring)
	if w := h.Warning(s.o.Path); w != "" {
		res.Warnings = append(res.Warnings, w)
	}
}
