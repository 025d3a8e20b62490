package keys

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// The JWKS endpoint (`microctl key serve`).
//
// Caching rule: a next key is published one rotation before it signs, so a
// cache that refreshes more often than rotations happen learns every key
// before the first token signed with it exists. The server therefore never
// sends a max-age longer than half the ring's rotation period (the other
// half is margin for a rotator's jitter and for clocks), and refuses to
// start with a --max-age over that limit. The max-age of each response is
// drawn at random from [max/2, max], so caches that started together do
// not expire together.

// MaxAgeLimit is the longest Cache-Control max-age the JWKS endpoint may
// send for ring r: half its rotation period.
func MaxAgeLimit(r *Ring) time.Duration {
	p := r.RotationPeriod.Duration()
	if p <= 0 {
		p = DefaultRotationPeriod
	}
	return p / 2
}

// DefaultMaxAge is `key serve --max-age` unless given.
const DefaultMaxAge = 10 * time.Minute

// MaxAgeError means --max-age is longer than the ring's policy allows.
type MaxAgeError struct {
	MaxAge, Limit time.Duration
	Period        time.Duration
}

func (e *MaxAgeError) Error() string {
	return fmt.Sprintf("--max-age %s is longer than %s, half the ring's rotation period %s: a cache could still hold the old JWKS when a new key signs",
		e.MaxAge, e.Limit, e.Period)
}

// Hint says what to do about it.
func (e *MaxAgeError) Hint() string { return fmt.Sprintf("use --max-age %s or less", e.Limit) }

// JWKSServer serves the ring's public JWKS over HTTP, following <path>/jwks
// and <path>/ring with blocking queries. When Consul is away it keeps
// serving the last good set.
type JWKSServer struct {
	kv      registry.KVWatcher
	path    string
	maxAge  time.Duration
	logf    func(format string, a ...any)
	wait    time.Duration
	jitter  func(n int64) int64
	mu      sync.RWMutex
	doc     []byte
	etag    string
	gen     int64
	limit   time.Duration
	period  time.Duration
	lastErr string
	loaded  chan struct{}
	once    sync.Once
	updated time.Time
}

// JWKSServerOptions configure a JWKSServer.
type JWKSServerOptions struct {
	MaxAge time.Duration                 // default DefaultMaxAge
	Logf   func(format string, a ...any) // one line per change or error
	Wait   time.Duration                 // blocking query wait (default 5m)
}

// NewJWKSServer returns a server for the ring at path.
func NewJWKSServer(kv registry.KVWatcher, path string, o JWKSServerOptions) (*JWKSServer, error) {
	p, err := cleanPath("path", path)
	if err != nil {
		return nil, err
	}
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxAge < 2*time.Second {
		return nil, errors.New("--max-age must be at least 2s")
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return &JWKSServer{kv: kv, path: p, maxAge: o.MaxAge, logf: o.Logf, wait: o.Wait, jitter: rand.Int64N, loaded: make(chan struct{})}, nil
}

// CheckPolicy refuses a --max-age longer than the ring's limit.
func (s *JWKSServer) CheckPolicy(r *Ring) error {
	if lim := MaxAgeLimit(r); s.maxAge > lim {
		return &MaxAgeError{MaxAge: s.maxAge, Limit: lim, Period: r.RotationPeriod.Duration()}
	}
	return nil
}

// Run follows the ring and its JWKS until ctx is done.
func (s *JWKSServer) Run(ctx context.Context) error {
	fo := registry.FollowOptions{Wait: s.wait, OnError: func(err error) {
		s.mu.Lock()
		s.lastErr = err.Error()
		s.mu.Unlock()
		s.logf("consul: %v (serving the last good JWKS)", err)
	}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = registry.FollowKV(ctx, s.kv, s.path+"/ring", fo, func(e *registry.KVEntry) {
			if e == nil {
				return
			}
			r, err := ParseRing(e.Value)
			if err != nil {
				s.logf("ring: %v (keeping the last policy)", err)
				return
			}
			s.mu.Lock()
			s.limit, s.period = MaxAgeLimit(r), r.RotationPeriod.Duration()
			s.mu.Unlock()
		})
	}()
	err := registry.FollowKV(ctx, s.kv, s.path+"/jwks", fo, func(e *registry.KVEntry) {
		if e == nil {
			s.logf("%s/jwks does not exist: keeping the last good set", s.path)
			return
		}
		ks, err := ParseJWKS(e.Value)
		if err != nil {
			s.logf("%s/jwks: %v (keeping the last good set)", s.path, err)
			return
		}
		sum := sha256.Sum256(e.Value)
		s.mu.Lock()
		s.doc = append([]byte(nil), e.Value...)
		s.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		s.gen = ks.Generation
		s.lastErr = ""
		s.updated = time.Now()
		s.mu.Unlock()
		s.once.Do(func() { close(s.loaded) })
		s.logf("jwks generation %d: %d keys (current %s, next %s)", ks.Generation, len(ks.Kids()), short(ks.Current), short(ks.Next))
	})
	wg.Wait()
	return err
}

// WaitLoaded blocks until a JWKS has been read once.
func (s *JWKSServer) WaitLoaded(ctx context.Context) error {
	select {
	case <-s.loaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxAgeNow draws this response's max-age: uniform in [max/2, max], never
// over the ring's limit, at least one second.
func (s *JWKSServer) maxAgeNow(limit time.Duration) int64 {
	hi := s.maxAge
	if limit > 0 && hi > limit {
		hi = limit
	}
	lo := hi / 2
	d := lo + time.Duration(s.jitter(int64(hi-lo)+1))
	return max(1, int64(d/time.Second))
}

// ServeHTTP answers /.well-known/jwks.json and /healthz.
func (s *JWKSServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.mu.RLock()
	doc, etag, gen, limit, lastErr, updated := s.doc, s.etag, s.gen, s.limit, s.lastErr, s.updated
	s.mu.RUnlock()
	switch r.URL.Path {
	case "/.well-known/jwks.json":
		if doc == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "no JWKS loaded yet", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(s.maxAgeNow(limit), 10))
		h.Set("ETag", etag)
		if etagMatches(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/jwk-set+json")
		h.Set("Content-Length", strconv.Itoa(len(doc)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(doc)
	case "/healthz":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		st := map[string]any{"status": "ok", "generation": gen}
		if doc == nil {
			st["status"] = "no JWKS loaded yet"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if lastErr != "" {
			st["consul"] = lastErr
			st["serving_since"] = updated.UTC().Format(time.RFC3339)
		}
		_ = json.NewEncoder(w).Encode(st)
	default:
		http.NotFound(w, r)
	}
}

// etagMatches implements If-None-Match (RFC 9110 13.1.2): a list of
// entity tags compared weakly, or "*".
func etagMatches(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// HTTPWatcher reads a JWKS from a URL (a `key serve` endpoint, or any
// identity provider's) and offers it through the KVWatcher interface, so a
// Verifier can follow a URL instead of Consul. It fetches again when the
// response's max-age runs out, with If-None-Match.
type HTTPWatcher struct {
	URL    string
	Client *http.Client

	mu      sync.Mutex
	body    []byte
	etag    string
	index   uint64
	expires time.Time
}

// NewHTTPWatcher returns a watcher for url with a bounded HTTP client.
func NewHTTPWatcher(url string) *HTTPWatcher {
	return &HTTPWatcher{URL: url, Client: &http.Client{Timeout: 10 * time.Second}}
}

// KVWatch ignores key; it returns the JWKS at the URL, blocking until the
// cached copy expires and the set changes, or wait passes.
func (h *HTTPWatcher) KVWatch(ctx context.Context, _ string, index uint64, wait time.Duration) (*registry.KVEntry, uint64, error) {
	deadline := time.Now().Add(wait)
	for {
		h.mu.Lock()
		cur, body, exp := h.index, h.body, h.expires
		h.mu.Unlock()
		if cur != index && body != nil {
			return &registry.KVEntry{Key: h.URL, Value: body, ModifyIndex: cur}, cur, nil
		}
		if d := time.Until(exp); d > 0 {
			if until := time.Until(deadline); until < d {
				if !sleepFor(ctx, max(until, 0)) {
					return nil, index, ctx.Err()
				}
				return h.entry(), cur, nil
			}
			if !sleepFor(ctx, d) {
				return nil, index, ctx.Err()
			}
		}
		if err := h.fetch(ctx); err != nil {
			return nil, index, err
		}
		h.mu.Lock()
		changed := h.index != index
		h.mu.Unlock()
		if changed || time.Now().After(deadline) {
			return h.entry(), h.index, nil
		}
	}
}

func (h *HTTPWatcher) entry() *registry.KVEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.body == nil {
		return nil
	}
	return &registry.KVEntry{Key: h.URL, Value: h.body, ModifyIndex: h.index}
}

func (h *HTTPWatcher) fetch(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if h.etag != "" {
		req.Header.Set("If-None-Match", h.etag)
	}
	h.mu.Unlock()
	res, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", h.URL, err)
	}
	defer res.Body.Close()
	ttl := cacheTTL(res.Header.Get("Cache-Control"))
	switch res.StatusCode {
	case http.StatusNotModified:
		h.mu.Lock()
		h.expires = time.Now().Add(ttl)
		h.mu.Unlock()
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("JWKS %s: HTTP %s", h.URL, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxValueSize+1))
	if err != nil {
		return fmt.Errorf("JWKS %s: %w", h.URL, err)
	}
	if len(b) > maxValueSize {
		return fmt.Errorf("JWKS %s: larger than %d KB", h.URL, maxValueSize/1024)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if string(b) != string(h.body) {
		h.body = b
		h.index++
	}
	h.etag = res.Header.Get("ETag")
	h.expires = time.Now().Add(ttl)
	return nil
}

// cacheTTL reads max-age from a Cache-Control header: 1 minute when there
// is none, between 1 second and 1 hour.
func cacheTTL(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return min(max(time.Duration(n)*time.Second, time.Second), time.Hour)
			}
		}
	}
	return time.Minute
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
