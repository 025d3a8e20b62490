package bench

import (
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Options configure a run. Build them with the With... functions; Run
// starts from the defaults.
type Options struct {
	// URL is the target, http://host[:port]/path. With Targets set, only
	// its path, query and Host header are used.
	URL string
	// Targets are host:port addresses to spread the connections over
	// (round-robin), e.g. the passing instances of a service.
	Targets []string
	// TCP sends Body as raw bytes instead of HTTP requests; a response is
	// complete after Expect bytes (default len(Body): an echo).
	TCP    bool
	Expect int

	Connections int           // default 50
	Duration    time.Duration // default 10s unless Requests is set
	Requests    int64         // total requests; 0: no limit
	Loops       int           // event loops; default GOMAXPROCS, at most Connections
	Method      string        // default GET
	Headers     []Header
	Body        []byte
	Timeout     time.Duration // per request, and per connect; default 2s
	Pipeline    int           // requests in flight per connection; default 1
	Rate        float64       // requests per second over all connections; 0: as fast as possible
	// Stages, when set, is a rate schedule (a ramp, steps) in place of
	// Rate; the run lasts as long as the stages.
	Stages []Stage
	Engine string // pkg/net engine: "" for the platform's best

	// TargetRequests, when set (--targets), are the requests to send, in
	// turn or, with RandomTargets, at random; URL, Method and Body are
	// then unused. Their URLs are full URLs, or paths alone with Targets
	// (the addresses of a service).
	TargetRequests []Request
	RandomTargets  bool

	// HTTP2 speaks HTTP/2: h2 through ALPN for https URLs, h2c with prior
	// knowledge for http URLs; Streams requests in flight per connection
	// (default 1).
	HTTP2   bool
	Streams int

	// TLS is the client configuration for https URLs (nil: the defaults:
	// system roots, SNI from the URL's host). ServerName, when empty, is
	// each URL's host; a session cache is added when it has none, so that
	// reconnects resume sessions.
	TLS *tls.Config

	// SLOs are pass/fail limits evaluated on the result (Result.SLO).
	// With SLOAbort the run stops as soon as one can no longer be met.
	SLOs     []SLO
	SLOAbort bool

	// Progress, when set, is called about every ProgressInterval from a
	// goroutine of its own with the run's progress so far.
	Progress         func(Progress)
	ProgressInterval time.Duration
}

// Option sets one field of Options.
type Option func(*Options)

func newOptions(opts ...Option) Options {
	o := Options{
		Connections:      50,
		Loops:            runtime.GOMAXPROCS(0),
		Method:           "GET",
		Timeout:          2 * time.Second,
		Pipeline:         1,
		ProgressInterval: time.Second,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.Stages) > 0 {
		sc := newSchedule(o.Stages)
		o.Duration = time.Duration(sc.length * 1e9)
		if sc.length > 0 {
			o.Rate = sc.total / sc.length // the mean: rate mode, and the target to compare with
		}
	}
	if o.Duration == 0 && o.Requests == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Loops > o.Connections && o.Connections > 0 {
		o.Loops = o.Connections
	}
	if o.TCP && o.Expect == 0 {
		o.Expect = len(o.Body)
	}
	o.Method = strings.ToUpper(o.Method)
	return o
}

// Validate reports the first setting that cannot work. The error is the
// user's to fix (microctl maps it to a usage error).
func (o *Options) Validate() error {
	switch {
	case o.URL == "" && len(o.Targets) == 0 && len(o.TargetRequests) == 0:
		return errors.New("no target: give a URL")
	case o.HTTP2 && (o.TCP || o.Pipeline > 1 || len(o.TargetRequests) > 0):
		return errors.New("HTTP/2 goes with neither --tcp, --pipeline nor --targets (use --streams for requests in flight)")
	case o.HTTP2 && o.Streams < 1:
		return fmt.Errorf("streams must be at least 1, not %d", o.Streams)
	case len(o.TargetRequests) > 0 && o.TCP:
		return errors.New("a targets file is HTTP requests; it does not go with --tcp")
	case o.Connections < 1:
		return fmt.Errorf("connections must be at least 1, not %d", o.Connections)
	case o.Duration < 0:
		return fmt.Errorf("duration must be positive, not %s", o.Duration)
	case o.Requests < 0:
		return fmt.Errorf("requests must be positive, not %d", o.Requests)
	case o.Loops < 1:
		return fmt.Errorf("loops must be at least 1, not %d", o.Loops)
	case o.Timeout <= 0:
		return fmt.Errorf("timeout must be positive, not %s", o.Timeout)
	case o.Pipeline < 1:
		return fmt.Errorf("pipeline must be at least 1, not %d", o.Pipeline)
	case o.Rate < 0:
		return fmt.Errorf("rate must be positive, not %g", o.Rate)
	case len(o.Stages) > 0 && !(o.Rate > 0):
		return errors.New("the rate schedule sends no request (every stage at 0 requests/s)")
	case o.TCP && o.Expect < 1:
		return errors.New("--tcp needs a payload (-b or --body-file) or the size of the reply to wait for (--expect)")
	case !o.TCP && !validMethod(o.Method):
		return fmt.Errorf("method %q is not an HTTP method", o.Method)
	}
	if !o.TCP {
		for _, h := range o.Headers {
			switch strings.ToLower(h.Name) {
			case "content-length", "transfer-encoding":
				return fmt.Errorf("header %s is set from the body (-b, --body-file), not with -H", h.Name)
			}
		}
	}
	return nil
}

// WithURL sets the target URL.
func WithURL(u string) Option { return func(o *Options) { o.URL = u } }

// WithTargets spreads connections over these host:port addresses.
func WithTargets(addrs ...string) Option { return func(o *Options) { o.Targets = addrs } }

// WithTCP switches to raw TCP: send body, wait for expect bytes back
// (0: as many as were sent).
func WithTCP(expect int) Option {
	return func(o *Options) { o.TCP, o.Expect = true, expect }
}

// WithConnections sets the number of connections.
func WithConnections(n int) Option { return func(o *Options) { o.Connections = n } }

// WithDuration runs for d.
func WithDuration(d time.Duration) Option { return func(o *Options) { o.Duration = d } }

// WithRequests sends n requests in all, then stops.
func WithRequests(n int64) Option { return func(o *Options) { o.Requests = n } }

// WithLoops sets the number of event loops.
func WithLoops(n int) Option { return func(o *Options) { o.Loops = n } }

// WithMethod sets the HTTP method.
func WithMethod(m string) Option { return func(o *Options) { o.Method = m } }

// WithHeaders adds request headers.
func WithHeaders(h ...Header) Option { return func(o *Options) { o.Headers = append(o.Headers, h...) } }

// WithBody sets the request body (or the TCP payload).
func WithBody(b []byte) Option { return func(o *Options) { o.Body = b } }

// WithTimeout bounds each request and each connect.
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// WithPipeline keeps n requests in flight on each connection.
func WithPipeline(n int) Option { return func(o *Options) { o.Pipeline = n } }

// WithRate paces requests at r per second in all, measuring latency from
// when each request was due (coordinated-omission correction, as wrk2).
func WithRate(r float64) Option { return func(o *Options) { o.Rate = r } }

// WithTargetRequests sends these requests, in turn or at random.
func WithTargetRequests(random bool, reqs ...Request) Option {
	return func(o *Options) { o.TargetRequests, o.RandomTargets = reqs, random }
}

// WithHTTP2 speaks HTTP/2 with up to streams concurrent streams per
// connection.
func WithHTTP2(streams int) Option {
	return func(o *Options) { o.HTTP2, o.Streams = true, streams }
}

// WithTLSConfig sets the client TLS configuration for https URLs.
func WithTLSConfig(cfg *tls.Config) Option { return func(o *Options) { o.TLS = cfg } }

// WithSLOs sets pass/fail limits; abort stops the run as soon as one can
// no longer be met.
func WithSLOs(abort bool, slos ...SLO) Option {
	return func(o *Options) { o.SLOs, o.SLOAbort = append(o.SLOs, slos...), abort }
}

// WithStages paces requests along a schedule: each stage goes linearly
// from its From to its To rate; the run lasts the stages' total.
func WithStages(st ...Stage) Option { return func(o *Options) { o.Stages = st } }

// WithEngine picks the pkg/net engine.
func WithEngine(name string) Option { return func(o *Options) { o.Engine = name } }

// WithProgress reports progress to fn every interval.
func WithProgress(interval time.Duration, fn func(Progress)) Option {
	return func(o *Options) { o.ProgressInterval, o.Progress = interval, fn }
}
