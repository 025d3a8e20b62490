// Package exporter serves the health model as Prometheus metrics: per
// instance and check, status, time in state, transitions and flapping; per
// service, instances by status; and the number of Consul requests made.
//
// It follows Consul with health.Watcher's blocking queries, so the number
// of requests stays constant in the number of services and a scrape makes
// none: a scrape renders what the last response said. consul_exporter, by
// contrast, reads /v1/health/service/:name for every service on every
// scrape (consul_exporter#62).
//
// Consul keeps no history (consul#461): time in state and transitions are
// counted from what the exporter saw since it started; a state that began
// before that is flagged (microctl_health_check_state_before_start).
package exporter

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// Options configure an Exporter.
type Options struct {
	// Services, when not empty, limits the metrics to these services.
	Services []string
	// Defaults are the TTL and interval to assume when an instance's Meta
	// has none (--ttl, --interval).
	Defaults health.Defaults
	// Wait is the blocking query's wait (default 5m).
	Wait time.Duration
	// A check is flapping while it has changed state FlapTransitions times
	// within FlapWindow (defaults 4 and 10m, as `health watch`).
	FlapTransitions int
	FlapWindow      time.Duration
	// OnError is told about each failed request; the exporter goes on.
	OnError func(err error, retryIn time.Duration)
	// Now is the clock, for tests.
	Now func() time.Time
}

// Option changes Options.
type Option func(*Options)

// WithServices limits the metrics to the named services.
func WithServices(s ...string) Option { return func(o *Options) { o.Services = s } }

// WithDefaults sets the TTL and interval assumed when Meta has none.
func WithDefaults(d health.Defaults) Option { return func(o *Options) { o.Defaults = d } }

// WithWait sets the blocking query's wait.
func WithWait(d time.Duration) Option { return func(o *Options) { o.Wait = d } }

// WithFlapping sets the flapping threshold.
func WithFlapping(transitions int, window time.Duration) Option {
	return func(o *Options) { o.FlapTransitions, o.FlapWindow = transitions, window }
}

// WithOnError sets the callback told about failed requests.
func WithOnError(f func(error, time.Duration)) Option { return func(o *Options) { o.OnError = f } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Now = now } }

// Exporter follows Consul and renders its state as metrics.
type Exporter struct {
	opts Options
	src  *recorder

	mu      sync.Mutex
	start   time.Time
	ready   bool
	checks  map[string]*track // by node/checkID
	updated time.Time
}

// track is what the exporter knows of one check beyond its current status.
type track struct {
	status      string
	instance    string // the check's ServiceID; "" for a node check
	since       time.Time
	beforeStart bool // the state began before the exporter started
	transitions int
	recent      []time.Time // transition times within the flap window
}

// New returns an exporter reading from src (a *registry.Client in
// production).
func New(src health.Source, opts ...Option) *Exporter {
	o := Options{FlapTransitions: 4, FlapWindow: 10 * time.Minute, Now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.OnError == nil {
		o.OnError = func(error, time.Duration) {}
	}
	return &Exporter{opts: o, src: newRecorder(src), checks: map[string]*track{}}
}

// Run follows Consul until ctx is done; it returns nil then, and an error
// only when the initial read fails.
func (e *Exporter) Run(ctx context.Context) error {
	e.mu.Lock()
	e.start = e.opts.Now()
	e.mu.Unlock()
	w := health.NewWatcher(e.src, health.WatchOptions{
		Services: e.opts.Services, Defaults: e.opts.Defaults, Wait: e.opts.Wait,
		FlapTransitions: e.opts.FlapTransitions, FlapWindow: e.opts.FlapWindow,
		OnError: func(err error, d time.Duration) {
			e.src.failed()
			e.opts.OnError(err, d)
		},
		Now: e.opts.Now,
		Ready: func([]health.Instance) {
			e.mu.Lock()
			e.ready, e.updated = true, e.opts.Now()
			e.mu.Unlock()
		},
	})
	return w.Run(ctx, e.observe)
}

// Ready reports whether the initial read is done.
func (e *Exporter) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ready
}

// observe keeps the per-check history the watch's events carry.
func (e *Exporter) observe(ev health.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.updated = ev.Time
	key := ev.Node + "/" + ev.Check
	switch ev.Type {
	case health.EventTransition:
		t := e.checks[key]
		if t == nil {
			t = &track{instance: ev.Instance}
			e.checks[key] = t
		}
		t.status, t.since, t.beforeStart = ev.To, ev.Time, false
		t.transitions++
		t.recent = append(t.recent, ev.Time)
	case health.EventCheckAdded:
		e.checks[key] = &track{status: ev.To, instance: ev.Instance, since: ev.Time}
	case health.EventCheckRemoved:
		delete(e.checks, key)
	case health.EventRegistered:
		// The event names the instance, not its checks: take them from
		// the response the watcher just diffed.
		for _, c := range e.src.checksOf(ev.Node, ev.Instance) {
			e.checks[c.Key()] = &track{status: c.Status, instance: c.ServiceID, since: ev.Time}
		}
	case health.EventDeregistered:
		for k, t := range e.checks {
			if t.instance == ev.Instance && strings.HasPrefix(k, ev.Node+"/") {
				delete(e.checks, k)
			}
		}
	}
}

// Registry returns a Prometheus registry holding the exporter's collector.
func (e *Exporter) Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	return reg
}

// recorder wraps the Source: it keeps the latest response of each kind
// (what a scrape renders) and counts the HTTP requests made.
type recorder struct {
	src health.Source

	mu          sync.Mutex
	cat         *registry.Catalog
	checks      []registry.Check
	checksIndex uint64
	requests    map[string]float64
	errors      float64
}

func newRecorder(src health.Source) *recorder {
	return &recorder{src: src, requests: map[string]float64{}}
}

func (r *recorder) Catalog(ctx context.Context) (*registry.Catalog, error) {
	cat, err := r.src.Catalog(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		// A failed read made at least one request.
		r.requests["catalog"]++
		return nil, err
	}
	r.requests["catalog"] += float64(cat.Requests)
	r.cat = cat
	if cat.ChecksIndex >= r.checksIndex || r.checks == nil {
		r.checks, r.checksIndex = nil, cat.ChecksIndex
		for _, in := range cat.Instances {
			r.checks = append(r.checks, in.Checks...)
		}
		for _, n := range cat.Nodes {
			r.checks = append(r.checks, n.Checks...)
		}
	}
	return cat, nil
}

func (r *recorder) WatchChecks(ctx context.Context, index uint64, wait time.Duration) ([]registry.Check, registry.BlockingResult, error) {
	// Counted when sent: a blocking query may be outstanding for minutes.
	r.count("watch_checks")
	checks, res, err := r.src.WatchChecks(ctx, index, wait)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && res.Index >= r.checksIndex {
		r.checks, r.checksIndex = checks, res.Index
	}
	return checks, res, err
}

func (r *recorder) WatchServices(ctx context.Context, index uint64, wait time.Duration) (registry.BlockingResult, error) {
	r.count("watch_services")
	return r.src.WatchServices(ctx, index, wait)
}

func (r *recorder) count(query string) {
	r.mu.Lock()
	r.requests[query]++
	r.mu.Unlock()
}

func (r *recorder) failed() {
	r.mu.Lock()
	r.errors++
	r.mu.Unlock()
}

func (r *recorder) checksOf(node, instance string) []registry.Check {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []registry.Check
	for _, c := range r.checks {
		if c.Node == node && c.ServiceID == instance {
			out = append(out, c)
		}
	}
	return out
}

// state is one consistent copy of what the recorder holds.
type state struct {
	cat      *registry.Catalog
	checks   []registry.Check
	requests map[string]float64
	errors   float64
}

func (r *recorder) state() state {
	r.mu.Lock()
	defer r.mu.Unlock()
	req := make(map[string]float64, len(r.requests))
	for k, v := range r.requests {
		req[k] = v
	}
	return state{cat: r.cat, checks: r.checks, requests: req, errors: r.errors}
}
