// Command gateway is a small API gateway in front of greeter: it finds the
// target service's passing instances in Consul (a blocking query, never a
// polling loop), requires a valid JWT on every request and proxies it to an
// instance, round robin. Tokens are verified with pkg/keys against the key
// ring's public JWKS, which it follows as keys rotate, so a rotation breaks
// no token in flight.
//
//	GET /health          "ok" once the JWKS is loaded (no token needed)
//	GET /_gateway/stats  counters as JSON (no token needed)
//	anything else        401 without a valid "Authorization: Bearer" token,
//	                     503 with no passing instance, else proxied
//
// Only passing instances get traffic (the health endpoint's passing
// filter), and a GET, HEAD or OPTIONS whose connection to an instance fails
// before any answer is tried once more on another instance, as go-micro's
// client.Retries does: an instance that left between two registry updates
// costs a retry, not an error.
//
// Flags keep go-micro's names and environment variables, like greeter's.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/examples/internal/microsvc"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

type config struct {
	microsvc.Options
	target  string
	jwtPath string
	leeway  time.Duration
	// jwksURL, when set, replaces Consul as the source of the JWKS (a
	// `microctl key serve` endpoint or any identity provider's).
	jwksURL string
	// upstream bounds the gateway's connections to instances.
	upstream upstreamTimeouts
}

// upstreamTimeouts bound a try on one instance. Both end in a retry on
// another instance (for an idempotent request), so they are what a dead or
// cut-off node costs a request: a SYN to a node that is gone gets no answer
// at all, and neither does a request on a kept-alive connection to it.
type upstreamTimeouts struct {
	connect  time.Duration // TCP connect; an instance on a live LAN answers in a millisecond
	response time.Duration // from the request written to the response header; 0: none
}

// Defaults: half a second to connect (well under TCP's first SYN
// retransmission at 1 s, so one lost SYN moves on to another instance
// rather than waiting for it), 10 s for the answer (the greeter answers at
// once; a stack with slower handlers sets GATEWAY_RESPONSE_TIMEOUT).
var defaultUpstreamTimeouts = upstreamTimeouts{connect: 500 * time.Millisecond, response: 10 * time.Second}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	if err := microsvc.Bind(fs, &c.Options, "go.micro.api", "GATEWAY_NO_REGISTER"); err != nil {
		return c, err
	}
	fs.StringVar(&c.target, "target", microsvc.Env("GATEWAY_TARGET", "go.micro.srv.greeter"), "service to proxy to (env GATEWAY_TARGET)")
	fs.StringVar(&c.jwtPath, "jwt_path", microsvc.Env("GATEWAY_JWT_PATH", keys.DefaultPath), "KV path of the key ring; the gateway reads <path>/jwks only (env GATEWAY_JWT_PATH)")
	fs.StringVar(&c.jwksURL, "jwks_url", microsvc.Env("GATEWAY_JWKS_URL", ""), "verify tokens with the JWKS at this URL (e.g. microctl key serve's /.well-known/jwks.json) instead of reading <jwt_path>/jwks from Consul (env GATEWAY_JWKS_URL)")
	c.leeway = keys.DefaultLeeway
	if v := os.Getenv("GATEWAY_LEEWAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("GATEWAY_LEEWAY: %w", err)
		}
		c.leeway = d
	}
	fs.DurationVar(&c.leeway, "leeway", c.leeway, "clock skew tolerated on exp, nbf and iat (env GATEWAY_LEEWAY)")
	c.upstream = defaultUpstreamTimeouts
	for _, d := range []struct {
		env, flag, help string
		v               *time.Duration
	}{
		{"GATEWAY_CONNECT_TIMEOUT", "connect_timeout", "connect timeout to an instance; on expiry an idempotent request is retried on another (env GATEWAY_CONNECT_TIMEOUT)", &c.upstream.connect},
		{"GATEWAY_RESPONSE_TIMEOUT", "response_timeout", "time for an instance's response header once the request is sent, 0 for none; on expiry as connect_timeout (env GATEWAY_RESPONSE_TIMEOUT)", &c.upstream.response},
	} {
		if v := os.Getenv(d.env); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil {
				return c, fmt.Errorf("%s: %w", d.env, err)
			}
			*d.v = x
		}
		fs.DurationVar(d.v, d.flag, *d.v, d.help)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.leeway < 0 {
		return c, errors.New("--leeway must not be negative")
	}
	if c.upstream.connect <= 0 || c.upstream.response < 0 {
		return c, errors.New("--connect_timeout must be positive and --response_timeout not negative")
	}
	return c, nil
}

var logf = microsvc.Logger("gateway")

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Fatalf("gateway: %v", err)
	}
	if c.Healthcheck {
		os.Exit(microsvc.Healthcheck(c.Listen))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		log.Fatalf("gateway: %v", err)
	}
}

// stats are the gateway's counters, served at /_gateway/stats.
type stats struct {
	Requests       atomic.Int64
	Unauthorized   atomic.Int64
	Proxied        atomic.Int64
	NoInstance     atomic.Int64
	UpstreamErrors atomic.Int64
	Retries        atomic.Int64
}

func (s *stats) snapshot(p *pool, v *keys.Verifier) map[string]any {
	m := map[string]any{
		"requests": s.Requests.Load(), "unauthorized": s.Unauthorized.Load(), "proxied": s.Proxied.Load(),
		"no_instance": s.NoInstance.Load(), "upstream_errors": s.UpstreamErrors.Load(), "retries": s.Retries.Load(), "instances": len(p.list()),
	}
	if ks := v.KeySet(); ks != nil {
		m["jwks_generation"], m["kids"] = ks.Generation, ks.Kids()
	}
	return m
}

func run(ctx context.Context, c config) error {
	client, err := c.Consul()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}

	var jwksSource registry.KVWatcher = client
	keysFrom := c.jwtPath + "/jwks"
	if c.jwksURL != "" {
		jwksSource, keysFrom = keys.NewHTTPWatcher(c.jwksURL), c.jwksURL
	}
	verifier, err := keys.NewVerifier(jwksSource, keys.WithPath(c.jwtPath), keys.WithLeeway(c.leeway),
		keys.WithOnError(func(err error) { log.Printf("gateway: jwks: %v", err) }),
		keys.WithOnUpdate(func(ks *keys.KeySet) {
			log.Printf("gateway: jwks generation %d: %d keys (current %s, next %s)", ks.Generation, len(ks.Kids()), ks.Current, ks.Next)
		}))
	if err != nil {
		return err
	}
	go verifier.Run(ctx)

	p := &pool{}
	go p.follow(ctx, client, c.target)

	var st stats
	rejects := newRejectLog()
	upstream := newUpstream(p, &st, c.target, c.upstream)
	authed := verifier.Middleware(upstream, func(r *http.Request, err error) {
		st.Unauthorized.Add(1)
		rejects.note(err)
	})

	mux := http.NewServeMux()
	var draining atomic.Bool
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() || verifier.KeySet() == nil {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /_gateway/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st.snapshot(p, verifier))
	})
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.Requests.Add(1)
		authed.ServeHTTP(w, r)
	}))
	var reg *registry.Registrar
	if !c.NoRegister {
		in, err := c.Instance(ln, map[string]string{"transport": "http", "server": "http", "registry": "consul", "protocol": "http"}, nil)
		if err != nil {
			return err
		}
		reg = microsvc.Keep(ctx, client, in, logf)
	}
	log.Printf("gateway listening on %s, proxying to %s, keys from %s", ln.Addr(), c.target, keysFrom)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	err = microsvc.Serve(ctx, srv, ln, reg, &draining, logf)
	log.Printf("gateway: %s", mustJSON(st.snapshot(p, verifier)))
	return err
}

// newUpstream returns the handler that proxies a request to a passing
// instance of target from p, retrying an idempotent request once on
// another instance when the first one gives no answer.
func newUpstream(p *pool, st *stats, target string, to upstreamTimeouts) http.Handler {
	var proxy *httputil.ReverseProxy
	proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse("http://" + r.In.Context().Value(upstreamKey{}).(*attempt).addr)
			r.SetURL(u)
			r.SetXForwarded()
			if v, ok := keys.FromContext(r.In.Context()); ok && v.Subject != "" {
				r.Out.Header.Set("X-Jwt-Subject", v.Subject)
			}
		},
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: to.connect, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: to.response,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
		},
		// Called when no answer came from the instance (nothing is written
		// to w yet), so a retry is invisible to the client.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a := r.Context().Value(upstreamKey{}).(*attempt)
			if !a.retried && idempotent(a.in) && a.in.Context().Err() == nil {
				if next, ok := p.pickExcept(a.addr); ok {
					st.Retries.Add(1)
					log.Printf("gateway: upstream %s: %v; retrying on %s", a.addr, err, next)
					retry := &attempt{in: a.in, addr: next, retried: true}
					proxy.ServeHTTP(w, a.in.WithContext(context.WithValue(a.in.Context(), upstreamKey{}, retry)))
					return
				}
			}
			st.UpstreamErrors.Add(1)
			log.Printf("gateway: upstream %s: %v", a.addr, err)
			http.Error(w, "bad gateway", http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, ok := p.pick()
		if !ok {
			st.NoInstance.Add(1)
			http.Error(w, "no passing instance of "+target, http.StatusServiceUnavailable)
			return
		}
		st.Proxied.Add(1)
		proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), upstreamKey{}, &attempt{in: r, addr: addr})))
	})
}

type upstreamKey struct{}

// attempt is one try of a request on one instance: in is the request as
// the client sent it, kept for a retry.
type attempt struct {
	in      *http.Request
	addr    string
	retried bool
}

// idempotent says whether a request may be sent again after its first
// try failed without an answer: a safe method and no body to replay.
func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0
	}
	return false
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// pool holds the passing instances of the target, kept current by a
// blocking query on Consul's health endpoint.
type pool struct {
	mu    sync.RWMutex
	addrs []string
	next  atomic.Uint64
}

func (p *pool) list() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.addrs
}

// pick returns the next instance, round robin.
func (p *pool) pick() (string, bool) {
	addrs := p.list()
	if len(addrs) == 0 {
		return "", false
	}
	return addrs[p.next.Add(1)%uint64(len(addrs))], true
}

// pickExcept returns the next instance other than addr.
func (p *pool) pickExcept(addr string) (string, bool) {
	addrs := p.list()
	start := p.next.Add(1)
	for i := range uint64(len(addrs)) {
		if a := addrs[(start+i)%uint64(len(addrs))]; a != addr {
			return a, true
		}
	}
	return "", false
}

// follow keeps the pool equal to the passing instances of name: index+wait
// blocking queries, the index reset when it goes backwards, backoff on
// errors, and a floor between queries so a flapping check cannot make it
// spin.
func (p *pool) follow(ctx context.Context, c *registry.Client, name string) {
	var index uint64
	failures := 0
	for ctx.Err() == nil {
		start := time.Now()
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute}).WithContext(ctx)
		entries, meta, err := c.API.Health().Service(name, "", true, q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			log.Printf("gateway: instances of %s: %v", name, c.Err(err))
			microsvc.Sleep(ctx, registry.Backoff(failures, 100*time.Millisecond, 30*time.Second))
			continue
		}
		failures = 0
		if meta.LastIndex < index || meta.LastIndex == 0 {
			index = 0
		} else {
			index = meta.LastIndex
		}
		addrs := make([]string, 0, len(entries))
		for _, e := range entries {
			host := e.Service.Address
			if host == "" {
				host = e.Node.Address
			}
			addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(e.Service.Port)))
		}
		p.mu.Lock()
		changed := fmt.Sprint(p.addrs) != fmt.Sprint(addrs)
		p.addrs = addrs
		p.mu.Unlock()
		if changed {
			log.Printf("gateway: %d passing instances of %s: %v", len(addrs), name, addrs)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			microsvc.Sleep(ctx, 50*time.Millisecond-d)
		}
	}
}

// rejectLog logs 401s at most once a second, with a count, so a client
// hammering with a bad token cannot flood the log.
type rejectLog struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

func newRejectLog() *rejectLog { return &rejectLog{} }

func (l *rejectLog) note(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	if time.Since(l.last) < time.Second {
		return
	}
	log.Printf("gateway: 401 x%d, latest: %v", l.count, err)
	l.last, l.count = time.Now(), 0
}
