package keys

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// flakyConsul is a real client whose blocking reads can be made to fail,
// as when Consul is away.
type flakyConsul struct {
	*registry.Client
	down atomic.Bool
}

func (f *flakyConsul) KVWatch(ctx context.Context, key string, index uint64, wait time.Duration) (*registry.KVEntry, uint64, error) {
	if f.down.Load() {
		return nil, index, errors.New("connection refused (test)")
	}
	if wait > time.Second {
		wait = time.Second // so the test sees Consul go away quickly
	}
	return f.Client.KVWatch(ctx, key, index, wait)
}

func TestEtagMatches(t *testing.T) {
	for _, tc := range []struct {
		h    string
		want bool
	}{{"", false}, {`"a"`, true}, {`W/"a"`, true}, {`"b", "a"`, true}, {`*`, true}, {`"b"`, false}, {`a`, false}} {
		if got := etagMatches(tc.h, `"a"`); got != tc.want {
			t.Errorf("etagMatches(%q) = %v", tc.h, got)
		}
	}
}

func maxAgeOf(t *testing.T, res *http.Response) int {
	t.Helper()
	cc := res.Header.Get("Cache-Control")
	_, v, ok := strings.Cut(cc, "max-age=")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		t.Fatalf("Cache-Control %q", cc)
	}
	return n
}

// TestJWKSEndpoint: the endpoint serves the ring's JWKS with ETag/304 and a
// randomised max-age capped by the ring's policy, keeps the last good set
// when Consul is away, and a standard JWKS client (jwx's jwk.Cache)
// verifies tokens across rotations from it.
func TestJWKSEndpoint(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	s := newStore(t, c, newClock(), WithClock(time.Now))
	if _, err := s.Init(ctx, InitOptions{MaxTokenTTL: time.Hour, RotationPeriod: 8 * time.Second}); err != nil {
		t.Fatal(err)
	}
	ring, _ := s.Ring(ctx)
	fc := &flakyConsul{Client: c}
	tooLong, _ := NewJWKSServer(fc, s.Path(), JWKSServerOptions{MaxAge: time.Hour})
	var mae *MaxAgeError
	if err := tooLong.CheckPolicy(ring); !errors.As(err, &mae) || mae.Limit != 4*time.Second {
		t.Fatalf("max-age over the policy: %v", err)
	}
	srv, err := NewJWKSServer(fc, s.Path(), JWKSServerOptions{MaxAge: 4 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.CheckPolicy(ring); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go srv.Run(runCtx)
	if err := srv.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := hs.URL + "/.well-known/jwks.json"

	get := func(h map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	res, body := get(nil)
	stored, _ := s.JWKSDoc(ctx)
	if res.StatusCode != 200 || string(body) != string(stored) || res.Header.Get("ETag") == "" {
		t.Fatalf("GET: %d %s %q", res.StatusCode, res.Header, body)
	}
	etag := res.Header.Get("ETag")
	if res, body := get(map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("If-None-Match: %d %q", res.StatusCode, body)
	}
	seen := map[int]bool{}
	for range 40 {
		res, _ := get(nil)
		n := maxAgeOf(t, res)
		if n < 2 || n > 4 {
			t.Fatalf("max-age %d outside [2, 4]", n)
		}
		seen[n] = true
	}
	if len(seen) < 2 {
		t.Fatalf("max-age never varied: %v", seen)
	}

	// A standard client: jwx's jwk.Cache, refreshing by max-age.
	cache, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.Register(ctx, url, jwk.WithMinInterval(time.Second)); err != nil {
		t.Fatal(err)
	}
	verify := func(tok *Signed) {
		t.Helper()
		set, err := cache.Lookup(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwt.Parse([]byte(tok.Token), jwt.WithKeySet(set)); err != nil {
			t.Fatalf("jwk.Cache rejects a token of %s: %v", tok.Kid, err)
		}
	}
	waitKid := func(kid string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if set, err := cache.Lookup(ctx, url); err == nil {
				if _, ok := set.LookupKeyID(kid); ok {
					return
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("jwk.Cache never learnt %s", kid)
	}
	tok0, err := s.Sign(ctx, SignOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	verify(tok0)
	for i := range 2 {
		res, err := s.Rotate(ctx, RotateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The new current key was published a rotation ago: the cache
		// verifies its tokens at once, without a refresh.
		tok, err := s.Sign(ctx, SignOptions{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		verify(tok)
		verify(tok0)
		// Within max-age the cache learns the new next key, before it signs.
		waitKid(res.Next)
		t.Logf("rotation %d: jwk.Cache verified %s and learnt %s", i+1, tok.Kid, res.Next)
	}

	// The gateway's way: a Verifier following the URL.
	v, err := StartVerifier(ctx, NewHTTPWatcher(url))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok0.Token); err != nil {
		t.Fatalf("HTTP verifier: %v", err)
	}

	// Consul away: the last good set is still served, /healthz says so.
	before, _ := s.JWKSDoc(ctx)
	fc.down.Store(true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(hs.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), "connection refused (test)") {
			if res.StatusCode != 200 {
				t.Fatalf("healthz with a last good set: %d", res.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz never reported Consul away: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res, body := get(nil); res.StatusCode != 200 || string(body) != string(before) {
		t.Fatalf("with Consul away: %d %q", res.StatusCode, body)
	}
}
