package keys

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/microctl/microctl/pkg/registry"
)

// Verifier verifies tokens against the ring's public JWKS and follows it
// as it changes, with a Consul blocking query on <path>/jwks (no polling).
// It needs read access to that one key and nothing else. Safe for
// concurrent use.
type Verifier struct {
	w      registry.KVWatcher
	key    string
	o      Options
	ks     atomic.Pointer[KeySet]
	loaded chan struct{}
	once   sync.Once
	legacy legacyState // WithLegacySecret (verifier_legacy.go)
}

// NewVerifier returns a verifier for the ring at WithPath. It holds no keys
// until Run has read the JWKS once; Verify rejects every token until then.
func NewVerifier(w registry.KVWatcher, opts ...Option) (*Verifier, error) {
	o, err := newOptions(opts...)
	if err != nil {
		return nil, err
	}
	return &Verifier{w: w, key: o.Path + "/jwks", o: o, loaded: make(chan struct{})}, nil
}

// StartVerifier makes a verifier, starts following the JWKS in the
// background until ctx is done, and waits for the first read: a gateway
// can serve as soon as it returns.
func StartVerifier(ctx context.Context, w registry.KVWatcher, opts ...Option) (*Verifier, error) {
	v, err := NewVerifier(w, opts...)
	if err != nil {
		return nil, err
	}
	go v.Run(ctx)
	if err := v.WaitLoaded(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// Run follows the JWKS until ctx is done. A value that does not parse is
// reported through WithOnError and the keys already loaded stay in use:
// one bad write must not lock every client out. A deleted JWKS empties the
// set: the ring was removed on purpose.
func (v *Verifier) Run(ctx context.Context) error {
	if v.o.LegacySecret {
		go func() { _ = v.runLegacy(ctx) }()
	}
	return registry.FollowKV(ctx, v.w, v.key, registry.FollowOptions{Wait: v.o.Wait, OnError: v.o.OnError},
		func(e *registry.KVEntry) {
			ks := &KeySet{keys: map[string]verifyKey{}}
			if e != nil {
				parsed, err := ParseJWKS(e.Value)
				if err != nil {
					if v.o.OnError != nil {
						v.o.OnError(&CorruptError{Key: v.key, Err: err})
					}
					if v.ks.Load() != nil {
						return
					}
				} else {
					ks = parsed
				}
			} else if v.o.OnError != nil {
				v.o.OnError(fmt.Errorf("%s does not exist: no token verifies until the ring is created (microctl key init)", v.key))
			}
			v.ks.Store(ks)
			v.remerge()
			v.once.Do(func() { close(v.loaded) })
			if v.o.OnUpdate != nil {
				v.o.OnUpdate(ks)
			}
		})
}

// WaitLoaded blocks until the JWKS has been read once, or ctx is done.
func (v *Verifier) WaitLoaded(ctx context.Context) error {
	select {
	case <-v.loaded:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", v.key, ctx.Err())
	}
}

// KeySet is the set in use now (nil before the first read).
func (v *Verifier) KeySet() *KeySet { return v.ks.Load() }

// Verify checks token with the keys loaded now; see KeySet.Verify.
func (v *Verifier) Verify(token string) (*Verified, error) {
	return v.keySet().Verify(token, v.o.Clock(), v.o.Leeway)
}

type verifiedKey struct{}

// FromContext returns what the Middleware verified for this request.
func FromContext(ctx context.Context) (*Verified, bool) {
	v, ok := ctx.Value(verifiedKey{}).(*Verified)
	return v, ok
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header, or "".
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// Middleware lets a request through to next only with a valid bearer
// token; otherwise it answers 401 with a WWW-Authenticate header (RFC
// 6750) and calls onReject, if set, with the reason.
func (v *Verifier) Middleware(next http.Handler, onReject func(*http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := BearerToken(r)
		var (
			ver *Verified
			err error
		)
		if tok == "" {
			err = errors.New("no bearer token")
		} else {
			ver, err = v.Verify(tok)
		}
		if err != nil {
			if onReject != nil {
				onReject(r, err)
			}
			desc := strings.NewReplacer(`"`, "'", "\\", "/").Replace(err.Error())
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, desc))
			http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), verifiedKey{}, ver)))
	})
}
