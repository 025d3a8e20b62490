package keys

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/microctl/microctl/pkg/registry"
)

// WithLegacySecret makes a Verifier also follow the legacy key (see
// WithLegacyPath) and verify tokens WITHOUT a kid, as the seed's gateway
// issues them, with the HS256 secret there. It needs read access to that
// one key. Tokens with a kid are verified with the JWKS as always.
func WithLegacySecret() Option { return func(o *Options) { o.LegacySecret = true } }

// legacyState is the Verifier's view of the legacy key.
type legacyState struct {
	mu     sync.Mutex
	secret []byte                 // nil: none loaded
	merged atomic.Pointer[KeySet] // the JWKS set plus the legacy secret
}

// runLegacy follows the legacy key until ctx is done.
func (v *Verifier) runLegacy(ctx context.Context) error {
	return registry.FollowKV(ctx, v.w, v.o.LegacyPath, registry.FollowOptions{Wait: v.o.Wait, OnError: v.o.OnError},
		func(e *registry.KVEntry) {
			var secret []byte
			if e != nil {
				d, err := parseLegacy(e.Value)
				if err != nil || len(d.Key) < 16 {
					if v.o.OnError != nil {
						v.o.OnError(&CorruptError{Key: v.o.LegacyPath, Err: ErrLegacyUnsafe})
					}
					return // keep what was loaded: one bad write must not lock clients out
				}
				secret = []byte(d.Key)
			}
			v.legacy.mu.Lock()
			v.legacy.secret = secret
			v.legacy.mu.Unlock()
			v.remerge()
		})
}

// remerge rebuilds the set Verify uses from the JWKS set and the legacy
// secret; it runs on each change of either, never per request.
func (v *Verifier) remerge() {
	if !v.o.LegacySecret {
		return
	}
	v.legacy.mu.Lock()
	defer v.legacy.mu.Unlock()
	base := v.ks.Load()
	if v.legacy.secret == nil || base == nil {
		v.legacy.merged.Store(base)
		return
	}
	m := &KeySet{keys: maps.Clone(base.keys), Current: base.Current, Next: base.Next, Generation: base.Generation}
	if m.keys == nil {
		m.keys = map[string]verifyKey{}
	}
	// Under a kid no JWKS holds (thumbprints are base64url): kid-less
	// tokens reach it; a token naming it needs the secret all the same.
	m.keys["\x00legacy"] = verifyKey{kid: "legacy", alg: HS256, key: v.legacy.secret}
	v.legacy.merged.Store(m)
}

// keySet is the set Verify checks against.
func (v *Verifier) keySet() *KeySet {
	if v.o.LegacySecret {
		return v.legacy.merged.Load()
	}
	return v.ks.Load()
}
