// Package bench implements `microctl bench`.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/bench"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// jwtMint is the value of a bare --jwt: mint a token from the key ring.
const jwtMint = "keyring"

// jwtSubject is the sub claim of the tokens bench mints.
const jwtSubject = "microctl-bench"

// Options are the inputs of `microctl bench`.
type Options struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	// MintJWT signs a token lasting at least ttl with the key ring's
	// current key (a bare --jwt).
	MintJWT func(ctx context.Context, ttl time.Duration) (string, error)
	// Docker and ConsulEnv serve --workers: the swarm that runs them, and
	// the CONSUL_* settings they get to reach the same Consul.
	Docker    func() (client.APIClient, error)
	ConsulEnv func() map[string]string

	URL         string
	Service     string
	Connections int
	Duration    time.Duration
	Requests    int64
	Loops       int
	Method      string
	Headers     []string
	Body        string
	BodyFile    string
	Timeout     time.Duration
	Pipeline    int
	Rate        float64 // -R N, or the start of a ramp -R START:END
	RateEnd     float64 // the end of a ramp
	Ramp        time.Duration
	StagesFile  string
	TCP         bool
	Expect      int
	JWT         string
	KeyPath     string
	Engine      string
	Output      cmdutil.Format
	HDRFile     string
	ReportFile  string
	SLOs        []string
	TargetsFile string
	HTTP2       bool
	Streams     int
	TLS         bench.ClientTLS
	Random      bool
	SLOAbort    bool

	slos   []bench.SLO
	rate   string
	stages []bench.Stage
	reqs   []bench.Request
	setM   bool

	tlsConfig *tls.Config
	headers   []bench.Header
	body      []byte
	setDur    bool
	setN      bool
	spread    spreadFlags
}

// NewCmdBench builds the command. runF replaces the run function in tests
// that only check flag parsing.
func NewCmdBench(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Consul: f.Consul, Docker: f.Docker}
	opts.ConsulEnv = func() map[string]string { return consulEnv(f) }
	opts.MintJWT = func(ctx context.Context, ttl time.Duration) (string, error) {
		return mintJWT(ctx, f.Consul, opts.KeyPath, ttl)
	}
	cmd := &cobra.Command{
		Use:   "bench [URL]",
		Short: "Load-test an HTTP service (or a TCP server) and report latency honestly",
		Long: `Send HTTP/1.1 requests over keep-alive connections as fast as the target
answers (or at a constant rate with -R) and report requests/s, bytes/s, the
latency distribution (HdrHistogram: p50 to p99.9 and max), status codes and
errors by kind (connect, read, write, timeout, parse, closed by peer).

The client runs on microctl's own epoll reactor (pkg/net); on other systems
it falls back to an engine on Go's net package and says so.

With -R the latency is measured from when each request was due, not from
when it could be sent, so a stalled server is charged for the requests it
held up (coordinated omission, corrected as wrk2 does); both the corrected
and the uncorrected figures are shown.

Without a URL, microctl starts its built-in target (microctl serve) on a
free loopback port in this process and benchmarks it: the first thing to
try. With --service NAME the passing instances of a Consul service are
looked up and the connections are spread over them; a URL then only gives
the path.

--tcp sends the body (-b, --body-file) as raw bytes and counts a reply once
--expect bytes came back (default: as many as were sent, an echo).

--jwt signs one token with the current key of microctl's key ring (see
microctl key; the ring at --key-path in the Consul of --consul-addr) and
sends it as Authorization: Bearer on every request; --jwt=TOKEN sends a
token of your own.`,
		Example: `  microctl bench
  microctl bench http://127.0.0.1:8080/ -c 50 -d 10s
  microctl bench http://127.0.0.1:8080/api -n 100000 -m POST -b '{"name":"x"}' -H 'Content-Type: application/json'
  microctl bench http://127.0.0.1:8080/ -R 50000 -d 30s --report bench.html --hdr bench.hgrm
  microctl bench --service greeter /greeter/say -d 5s -o json | jq .requests_per_sec
  microctl bench --tcp 127.0.0.1:9000 -b ping
  microctl bench --jwt http://127.0.0.1:18080/     # through a gateway, with a token from the key ring`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.URL = args[0]
			}
			opts.setDur = cmd.Flags().Changed("duration")
			opts.setN = cmd.Flags().Changed("requests")
			opts.setM = cmd.Flags().Changed("method")
			if err := opts.validate(); err != nil {
				return err
			}
			if err := opts.validateSpread(cmd.Flags().Changed); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			if opts.spread.Workers > 0 {
				return runSpread(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&opts.Connections, "connections", "c", 50, "connections to keep open")
	fl.DurationVarP(&opts.Duration, "duration", "d", 10*time.Second, "how long to run (with -n alone: until the requests are done)")
	fl.Int64VarP(&opts.Requests, "requests", "n", 0, "requests to send in all, then stop")
	fl.IntVarP(&opts.Loops, "loops", "t", 0, "event loops (OS threads); default GOMAXPROCS")
	fl.StringVarP(&opts.Method, "method", "m", "GET", "HTTP method")
	fl.StringArrayVarP(&opts.Headers, "header", "H", nil, `request header "Name: value" (repeatable)`)
	fl.StringVarP(&opts.Body, "body", "b", "", "request body (with --tcp: the payload)")
	fl.StringVar(&opts.BodyFile, "body-file", "", "read the request body from a file ('-' for stdin)")
	fl.DurationVar(&opts.Timeout, "timeout", 2*time.Second, "fail a request (or a connect) after this long")
	fl.IntVar(&opts.Pipeline, "pipeline", 1, "requests in flight per connection (HTTP pipelining)")
	fl.StringVarP(&opts.rate, "rate", "R", "", "constant rate in requests/s over all connections (START:END with --ramp: a linear ramp), latency corrected for coordinated omission")
	fl.DurationVar(&opts.Ramp, "ramp", 0, "with -R START:END: ramp linearly over this long, then hold END until -d")
	fl.StringVar(&opts.StagesFile, "stages", "", "rate schedule FILE ('-' for stdin): lines of 'RATE DURATION' or 'START:END DURATION'")
	fl.BoolVar(&opts.TCP, "tcp", false, "raw TCP instead of HTTP: send the body, wait for --expect bytes")
	fl.IntVar(&opts.Expect, "expect", 0, "with --tcp: bytes that complete a reply (default: the payload's size)")
	fl.StringVar(&opts.Service, "service", "", "spread connections over the passing instances of this Consul service")
	fl.StringVar(&opts.JWT, "jwt", "", "send Authorization: Bearer TOKEN; a bare --jwt signs one with the key ring's current key (microctl key)")
	fl.Lookup("jwt").NoOptDefVal = jwtMint
	fl.StringVar(&opts.KeyPath, "key-path", keys.PathFromEnv(), "KV path of the key ring for a bare --jwt (env MICROCTL_KEY_PATH)")
	fl.StringVar(&opts.HDRFile, "hdr", "", "write the latency histogram to FILE (HdrHistogram percentile text, ms)")
	fl.StringVar(&opts.ReportFile, "report", "", "write a self-contained HTML report with the latency plot to FILE")
	fl.BoolVar(&opts.HTTP2, "http2", false, "speak HTTP/2: h2 through ALPN for https://, h2c with prior knowledge for http://")
	fl.IntVar(&opts.Streams, "streams", 1, "with --http2: concurrent streams (requests in flight) per connection")
	fl.StringVar(&opts.TLS.ServerName, "sni", "", "https: the server name to send (SNI) and verify, instead of the URL's host")
	fl.StringVar(&opts.TLS.CACert, "cacert", "", "https: trust the CA certificates in this PEM file instead of the system's")
	fl.BoolVarP(&opts.TLS.Insecure, "insecure", "k", false, "https: do not verify the server's certificate")
	fl.StringVar(&opts.TLS.Cert, "cert", "", "https: client certificate (PEM), with --key")
	fl.StringVar(&opts.TLS.Key, "key", "", "https: the client certificate's private key (PEM)")
	fl.StringVar(&opts.TargetsFile, "targets", "", "send the requests of FILE ('-' for stdin), vegeta's format: 'METHOD URL', header lines, '@BODYFILE'")
	fl.BoolVar(&opts.Random, "random", false, "with --targets: pick each request at random instead of in turn")
	fl.StringArrayVar(&opts.SLOs, "slo", nil, "pass/fail limit, repeatable: 'p99 < 200ms', 'max < 1s', 'mean < 5ms', 'errors < 1%', 'errors < 10', 'non2xx < 0.5%', 'rps > 1000'; exit 3 if one fails")
	fl.BoolVar(&opts.SLOAbort, "slo-abort", false, "stop the run as soon as an --slo limit can no longer be met")
	fl.StringVar(&opts.Engine, "engine", "", "pkg/net engine: epoll or go (default: the platform's best)")
	_ = fl.MarkHidden("engine")
	opts.spread.register(cmd)
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	cmd.AddCommand(newCmdWorker(f))
	return cmd
}

// validate checks the flags and reads the body; every mistake is a usage
// error (exit 2).
func (o *Options) validate() error {
	switch {
	case o.Connections < 1:
		return cmdutil.Usagef("-c/--connections must be at least 1")
	case o.Duration <= 0:
		return cmdutil.Usagef("-d/--duration must be positive")
	case o.Requests < 0:
		return cmdutil.Usagef("-n/--requests must not be negative")
	case o.setN && o.Requests == 0:
		return cmdutil.Usagef("-n/--requests must be at least 1 (leave it out to run for -d)")
	case o.Loops < 0:
		return cmdutil.Usagef("-t/--loops must not be negative")
	case o.Timeout <= 0:
		return cmdutil.Usagef("--timeout must be positive")
	case o.Pipeline < 1:
		return cmdutil.Usagef("--pipeline must be at least 1")
	case o.Body != "" && o.BodyFile != "":
		return cmdutil.Usagef("-b/--body and --body-file cannot be used together")
	case o.Expect < 0:
		return cmdutil.Usagef("--expect must not be negative")
	case o.Expect > 0 && !o.TCP:
		return cmdutil.Usagef("--expect goes with --tcp")
	case o.TCP && o.Service == "" && o.URL == "":
		return cmdutil.Usagef("--tcp needs an address: microctl bench --tcp HOST:PORT -b PAYLOAD")
	case o.TCP && o.JWT != "":
		return cmdutil.Usagef("--jwt is an HTTP header; it does not go with --tcp")
	}
	if o.URL != "" && !o.TCP {
		switch {
		case strings.HasPrefix(o.URL, "/"):
			if o.Service == "" {
				u := bench.RedactURL(o.URL)
				return cmdutil.Usagef("URL %q is a path: give a host (http://HOST:PORT%s) or --service NAME", u, u)
			}
		default:
			if _, err := bench.ParseURL(o.URL); err != nil {
				return cmdutil.Usagef("%v", err)
			}
		}
	}
	if err := o.readTargets(); err != nil {
		return err
	}
	switch {
	case o.Streams != 1 && !o.HTTP2:
		return cmdutil.Usagef("--streams goes with --http2")
	case o.HTTP2 && o.Streams < 1:
		return cmdutil.Usagef("--streams must be at least 1")
	case o.HTTP2 && o.TCP:
		return cmdutil.Usagef("--http2 does not go with --tcp")
	case o.HTTP2 && o.Pipeline > 1:
		return cmdutil.Usagef("--http2 does not pipeline: use --streams for requests in flight per connection")
	case o.HTTP2 && o.TargetsFile != "":
		return cmdutil.Usagef("--http2 does not go with --targets yet")
	}
	if o.TLS != (bench.ClientTLS{}) {
		if o.TCP {
			return cmdutil.Usagef("--sni, --cacert, -k, --cert and --key are for https; they do not go with --tcp")
		}
		cfg, err := o.TLS.Config()
		if err != nil {
			return cmdutil.Usagef("%v", err)
		}
		o.tlsConfig = cfg
	}
	if o.rate != "" {
		from, to, ramp, err := bench.ParseRate(o.rate)
		if err != nil {
			return cmdutil.Usagef("-R/--rate: %v", err)
		}
		o.Rate, o.RateEnd = from, to
		switch {
		case ramp && o.Ramp <= 0:
			return cmdutil.Usagef("-R %s is a ramp: give its length with --ramp DURATION", o.rate)
		case ramp && o.Ramp > o.Duration:
			return cmdutil.Usagef("--ramp %s is longer than -d %s", o.Ramp, o.Duration)
		case ramp:
			o.stages = bench.RampStages(from, to, o.Ramp, o.Duration)
		case o.Ramp > 0:
			return cmdutil.Usagef("--ramp goes with -R START:END")
		}
	} else if o.Ramp > 0 {
		return cmdutil.Usagef("--ramp goes with -R START:END")
	}
	if o.StagesFile != "" {
		switch {
		case o.rate != "":
			return cmdutil.Usagef("--stages and -R cannot be used together: the stages set the rate")
		case o.setDur:
			return cmdutil.Usagef("--stages and -d cannot be used together: the stages set the duration")
		case o.StagesFile == "-" && o.BodyFile == "-":
			return cmdutil.Usagef("--stages and --body-file cannot both read stdin")
		}
		var in io.Reader = o.IO.In
		if o.StagesFile != "-" {
			f, err := os.Open(o.StagesFile)
			if err != nil {
				return cmdutil.Usagef("--stages: %v", err)
			}
			defer f.Close()
			in = f
		}
		st, err := bench.ParseStages(in)
		if err != nil {
			return cmdutil.Usagef("--stages %s: %v", o.StagesFile, err)
		}
		o.stages = st
	}
	if o.stages != nil {
		var total float64
		for _, st := range o.stages {
			total += (st.From + st.To) / 2 * st.Duration.Seconds()
		}
		if total < 1 {
			return cmdutil.Usagef("the rate schedule sends no request")
		}
	}
	for _, e := range o.SLOs {
		slo, err := bench.ParseSLO(e)
		if err != nil {
			return cmdutil.Usagef("--slo: %v", err)
		}
		o.slos = append(o.slos, slo)
	}
	if o.SLOAbort && len(o.slos) == 0 {
		return cmdutil.Usagef("--slo-abort needs at least one --slo limit")
	}
	for _, h := range o.Headers {
		hd, err := bench.ParseHeader(h)
		if err != nil {
			return cmdutil.Usagef("-H: %v", err)
		}
		o.headers = append(o.headers, hd)
	}
	switch {
	case o.BodyFile == "-":
		b, err := io.ReadAll(o.IO.In)
		if err != nil {
			return fmt.Errorf("reading the body from stdin: %w", err)
		}
		o.body = b
	case o.BodyFile != "":
		b, err := os.ReadFile(o.BodyFile)
		if err != nil {
			return cmdutil.Usagef("--body-file: %v", err)
		}
		o.body = b
	default:
		o.body = []byte(o.Body)
	}
	if o.TCP && len(o.body) == 0 && o.Expect == 0 {
		return cmdutil.Usagef("--tcp needs a payload (-b or --body-file) or --expect BYTES")
	}
	return nil
}

func run(ctx context.Context, o *Options) (err error) {
	// Files are checked before the work starts: a run of minutes must not
	// end in "cannot create report.html".
	outs, err := openOutputs(o)
	if err != nil {
		return err
	}
	defer func() { outs.abandon() }()
	var bopts []bench.Option
	target := o.URL
	need := bench.DescriptorsNeeded(o.Connections, o.Loops, o.URL == "" && o.Service == "" && o.TargetsFile == "")
	if _, err := bench.EnsureDescriptors(need); err != nil {
		return err
	}
	switch {
	case o.Service != "":
		c, err := o.Consul()
		if err != nil {
			return err
		}
		addrs, err := bench.ResolveService(ctx, c.API.Health(), o.Service)
		if err != nil {
			return c.Err(err)
		}
		bopts = append(bopts, bench.WithTargets(addrs...))
		if target == "" {
			target = "/" // each instance is its own Host
		}
		o.IO.Infof("service %s: %d passing instance(s): %s", o.Service, len(addrs), strings.Join(addrs, ", "))
	case target == "" && len(o.reqs) > 0:
		// The targets file gives the URLs.
	case target == "":
		srv, err := bench.NewServer(bench.WithServerAddr("127.0.0.1:0"), bench.WithServerEngine(o.Engine))
		if err != nil {
			return err
		}
		if err := srv.Start(); err != nil {
			return fmt.Errorf("starting the built-in target: %w", err)
		}
		defer srv.Stop(context.Background())
		target = "http://" + srv.Addr().String() + "/"
		o.IO.Infof("no URL given: benchmarking the built-in target at %s (microctl serve, in this process)", target)
	}
	if o.TCP {
		target = strings.TrimPrefix(target, "tcp://")
		if o.Service == "" {
			bopts = append(bopts, bench.WithTargets(target))
		}
		bopts = append(bopts, bench.WithTCP(o.Expect))
		target = ""
	}
	if o.JWT != "" {
		tok := o.JWT
		if tok == jwtMint {
			// One token for the whole run: it must outlive it.
			ttl := max(keys.DefaultTokenTTL, o.Duration+o.Timeout+time.Minute)
			var err error
			if tok, err = o.MintJWT(ctx, ttl); err != nil {
				return fmt.Errorf("--jwt: %w", err)
			}
			o.IO.Infof("--jwt: signed a token for sub %q with the key ring at %s, valid %s", jwtSubject, o.KeyPath, ttl)
		}
		o.headers = append(o.headers, bench.Header{Name: "Authorization", Value: "Bearer " + tok})
	}
	duration := o.Duration
	if o.Requests > 0 && !o.setDur {
		duration = 0 // -n alone runs until the requests are done
	}
	if o.stages != nil {
		duration = 0 // the schedule sets it
		for _, st := range o.stages {
			duration += st.Duration
		}
	}
	bopts = append(bopts,
		bench.WithURL(target),
		bench.WithConnections(o.Connections),
		bench.WithDuration(duration),
		bench.WithRequests(o.Requests),
		bench.WithMethod(o.Method),
		bench.WithHeaders(o.headers...),
		bench.WithBody(o.body),
		bench.WithTimeout(o.Timeout),
		bench.WithPipeline(o.Pipeline),
		bench.WithRate(o.Rate),
		bench.WithStages(o.stages...),
		bench.WithTargetRequests(o.Random, o.reqs...),
		bench.WithTLSConfig(o.tlsConfig),
		bench.WithEngine(o.Engine),
	)
	if len(o.slos) > 0 {
		bopts = append(bopts, bench.WithSLOs(o.SLOAbort, o.slos...))
	}
	if o.HTTP2 {
		bopts = append(bopts, bench.WithHTTP2(o.Streams))
	}
	if o.Loops > 0 {
		bopts = append(bopts, bench.WithLoops(o.Loops))
	}
	what := fmt.Sprintf("%d connections", o.Connections)
	if duration > 0 {
		what += ", " + duration.String()
	}
	if o.Requests > 0 {
		what += fmt.Sprintf(", %d requests", o.Requests)
	}
	switch {
	case o.StagesFile != "":
		what += fmt.Sprintf(", %d stages from %s", len(o.stages), o.StagesFile)
	case o.stages != nil:
		what += fmt.Sprintf(", %g to %g requests/s over %s", o.Rate, o.RateEnd, o.Ramp)
	case o.Rate > 0:
		what += fmt.Sprintf(", %g requests/s", o.Rate)
	}
	o.IO.Infof("bench: %s", what)
	prog := newProgress(o.IO)
	if prog != nil {
		bopts = append(bopts, bench.WithProgress(time.Second, prog.update))
	}
	res, err := bench.Run(ctx, bopts...)
	if prog != nil {
		prog.clear()
	}
	var ce *bench.ConfigError
	if errors.As(err, &ce) {
		return &cmdutil.UsageError{Err: err}
	}
	if res == nil {
		return err
	}
	if res.Engine != "epoll" {
		o.IO.Warnf("using the portable %q engine (Go's net package), not epoll: expect lower throughput", res.Engine)
	}
	// The finished run is printed first: a file that cannot be written
	// must not throw the measurement away.
	rerr := render(o, res)
	werr := outs.write(res)
	if rerr != nil {
		return rerr
	}
	if werr != nil {
		return werr
	}
	if err != nil {
		return err // interrupted: the partial result is out
	}
	if res.Requests == 0 {
		return fmt.Errorf("no request succeeded: %s", noSuccessReason(o, res))
	}
	if !res.SLOsPassed() {
		failed := 0
		for _, s := range res.SLO {
			if !s.Pass {
				failed++
			}
		}
		msg := fmt.Sprintf("%d of %d --slo limits failed", failed, len(res.SLO))
		if res.SLOAbort != "" {
			msg += "; stopped early: " + res.SLOAbort
		}
		return cmdutil.Unhealthy("%s", msg)
	}
	return nil
}

// readTargets reads --targets.
func (o *Options) readTargets() error {
	if o.TargetsFile == "" {
		if o.Random {
			return cmdutil.Usagef("--random goes with --targets")
		}
		return nil
	}
	switch {
	case o.TCP:
		return cmdutil.Usagef("--targets lists HTTP requests; it does not go with --tcp")
	case o.URL != "":
		return cmdutil.Usagef("--targets gives the URLs: leave out the URL argument")
	case o.setM:
		return cmdutil.Usagef("--targets gives each request its method: leave out -m")
	case o.TargetsFile == "-" && (o.BodyFile == "-" || o.StagesFile == "-"):
		return cmdutil.Usagef("only one of --targets, --stages and --body-file can read stdin")
	}
	var in io.Reader = o.IO.In
	if o.TargetsFile != "-" {
		f, err := os.Open(o.TargetsFile)
		if err != nil {
			return cmdutil.Usagef("--targets: %v", err)
		}
		defer f.Close()
		in = f
	}
	reqs, err := bench.ParseTargets(in, os.ReadFile)
	if err != nil {
		return cmdutil.Usagef("--targets %s: %v", o.TargetsFile, err)
	}
	if o.Service == "" {
		for _, r := range reqs {
			if strings.HasPrefix(r.URL, "/") {
				return cmdutil.Usagef("--targets %s: %s %s is a path: give full URLs, or --service NAME to send the paths to its instances", o.TargetsFile, r.Method, bench.RedactURL(r.URL))
			}
		}
	}
	o.reqs = reqs
	return nil
}

// mintJWT signs a token with the key ring's current key, as
// `microctl key sign --sub microctl-bench --ttl TTL` does.
func mintJWT(ctx context.Context, consul func() (*registry.Client, error), path string, ttl time.Duration) (string, error) {
	c, err := consul()
	if err != nil {
		return "", err
	}
	s, err := keys.NewStore(c, keys.WithPath(path))
	if err != nil {
		return "", cmdutil.Usagef("--key-path: %v", err)
	}
	tok, err := s.Sign(ctx, keys.SignOptions{Subject: jwtSubject, TTL: ttl})
	if err != nil {
		return "", err
	}
	return tok.Token, nil
}

// noSuccessReason says why a run completed no request: its first error,
// or, with none, that nothing answered in time.
func noSuccessReason(o *Options, res *bench.Result) string {
	for _, k := range []string{"connect", "tls", "timeout", "parse", "closed", "read", "write"} {
		if e, ok := res.Errors.First[k]; ok {
			return k + " error: " + e
		}
	}
	if res.Errors.Total > 0 {
		return fmt.Sprintf("%d errors", res.Errors.Total)
	}
	what := "response"
	if o.TCP {
		what = "complete reply"
	}
	return fmt.Sprintf("%d sent, no %s within the run (%.2fs); the target accepted the connections but did not answer", res.Sent, what, res.ElapsedSeconds)
}

// outputs are the files a run writes, opened before it starts.
type outputs struct {
	files []*outFile
}

type outFile struct {
	flag    string
	name    string
	f       *os.File
	created bool // did not exist before: removed if the run ends without a result
	write   func(io.Writer, *bench.Result) error
	written bool
}

// openOutputs opens --hdr and --report for writing without truncating
// them, so that a bad path is a usage error before the run and an
// existing file is only replaced by a finished result.
func openOutputs(o *Options) (*outputs, error) {
	outs := &outputs{}
	add := func(flag, name string, fn func(io.Writer, *bench.Result) error) error {
		if name == "" {
			return nil
		}
		_, statErr := os.Stat(name)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return cmdutil.Usagef("%s: %v", flag, err)
		}
		outs.files = append(outs.files, &outFile{flag: flag, name: name, f: f, created: os.IsNotExist(statErr), write: fn})
		return nil
	}
	if err := add("--hdr", o.HDRFile, bench.WriteHDR); err != nil {
		return nil, err
	}
	if err := add("--report", o.ReportFile, func(w io.Writer, res *bench.Result) error {
		return bench.WriteReport(w, res, time.Now())
	}); err != nil {
		outs.abandon()
		return nil, err
	}
	return outs, nil
}

// write replaces each file's content with the result.
func (outs *outputs) write(res *bench.Result) error {
	var errs []error
	for _, of := range outs.files {
		err := of.f.Truncate(0)
		if err == nil {
			err = of.write(of.f, res)
		}
		if cerr := of.f.Close(); err == nil {
			err = cerr
		}
		of.written = true
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", of.flag, of.name, err))
		}
	}
	return errors.Join(errs...)
}

// abandon closes the files no result was written to, and removes those
// the run created.
func (outs *outputs) abandon() {
	for _, of := range outs.files {
		if of.written {
			continue
		}
		of.f.Close()
		if of.created {
			os.Remove(of.name)
		}
		of.written = true
	}
}
