// Package bench implements `microctl bench`.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

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
	Rate        float64
	TCP         bool
	Expect      int
	JWT         string
	KeyPath     string
	Engine      string
	Output      cmdutil.Format
	HDRFile     string
	ReportFile  string

	headers []bench.Header
	body    []byte
	setDur  bool
}

// NewCmdBench builds the command. runF replaces the run function in tests
// that only check flag parsing.
func NewCmdBench(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Consul: f.Consul}
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
			if err := opts.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
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
	fl.Float64VarP(&opts.Rate, "rate", "R", 0, "constant rate in requests/s over all connections, latency corrected for coordinated omission")
	fl.BoolVar(&opts.TCP, "tcp", false, "raw TCP instead of HTTP: send the body, wait for --expect bytes")
	fl.IntVar(&opts.Expect, "expect", 0, "with --tcp: bytes that complete a reply (default: the payload's size)")
	fl.StringVar(&opts.Service, "service", "", "spread connections over the passing instances of this Consul service")
	fl.StringVar(&opts.JWT, "jwt", "", "send Authorization: Bearer TOKEN; a bare --jwt signs one with the key ring's current key (microctl key)")
	fl.Lookup("jwt").NoOptDefVal = jwtMint
	fl.StringVar(&opts.KeyPath, "key-path", keys.PathFromEnv(), "KV path of the key ring for a bare --jwt (env MICROCTL_KEY_PATH)")
	fl.StringVar(&opts.HDRFile, "hdr", "", "write the latency histogram to FILE (HdrHistogram percentile text, ms)")
	fl.StringVar(&opts.ReportFile, "report", "", "write a self-contained HTML report with the latency plot to FILE")
	fl.StringVar(&opts.Engine, "engine", "", "pkg/net engine: epoll or go (default: the platform's best)")
	_ = fl.MarkHidden("engine")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
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
	case o.Loops < 0:
		return cmdutil.Usagef("-t/--loops must not be negative")
	case o.Timeout <= 0:
		return cmdutil.Usagef("--timeout must be positive")
	case o.Pipeline < 1:
		return cmdutil.Usagef("--pipeline must be at least 1")
	case o.Rate < 0:
		return cmdutil.Usagef("-R/--rate must not be negative")
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
				return cmdutil.Usagef("URL %q is a path: give a host (http://HOST:PORT%s) or --service NAME", o.URL, o.URL)
			}
		default:
			if _, err := bench.ParseURL(o.URL); err != nil {
				return cmdutil.Usagef("%v", err)
			}
		}
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

func run(ctx context.Context, o *Options) error {
	var bopts []bench.Option
	target := o.URL
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
		fmt.Fprintf(o.IO.ErrOut, "service %s: %d passing instance(s): %s\n", o.Service, len(addrs), strings.Join(addrs, ", "))
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
		fmt.Fprintf(o.IO.ErrOut, "no URL given: benchmarking the built-in target at %s (microctl serve, in this process)\n", target)
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
			fmt.Fprintf(o.IO.ErrOut, "--jwt: signed a token for sub %q with the key ring at %s, valid %s\n", jwtSubject, o.KeyPath, ttl)
		}
		o.headers = append(o.headers, bench.Header{Name: "Authorization", Value: "Bearer " + tok})
	}
	duration := o.Duration
	if o.Requests > 0 && !o.setDur {
		duration = 0 // -n alone runs until the requests are done
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
		bench.WithEngine(o.Engine),
	)
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
	if o.Rate > 0 {
		what += fmt.Sprintf(", %g requests/s", o.Rate)
	}
	fmt.Fprintf(o.IO.ErrOut, "bench: %s\n", what)
	prog := newProgress(o.IO)
	if prog != nil {
		bopts = append(bopts, bench.WithProgress(250*time.Millisecond, prog.update))
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
		fmt.Fprintf(o.IO.ErrOut, "warning: using the portable %q engine (Go's net package), not epoll: expect lower throughput\n", res.Engine)
	}
	if werr := writeFiles(o, res); werr != nil {
		return werr
	}
	if rerr := render(o, res); rerr != nil {
		return rerr
	}
	if err != nil {
		return err // interrupted: the partial result is out
	}
	if res.Requests == 0 && res.Errors.Total > 0 {
		return fmt.Errorf("no request succeeded: %s", firstError(res))
	}
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

func firstError(res *bench.Result) string {
	for _, k := range []string{"connect", "timeout", "parse", "closed", "read", "write"} {
		if e, ok := res.Errors.First[k]; ok {
			return k + " error: " + e
		}
	}
	return fmt.Sprintf("%d errors", res.Errors.Total)
}

func writeFiles(o *Options, res *bench.Result) error {
	if o.HDRFile != "" {
		if err := writeFile(o.HDRFile, func(w io.Writer) error { return bench.WriteHDR(w, res) }); err != nil {
			return fmt.Errorf("--hdr: %w", err)
		}
	}
	if o.ReportFile != "" {
		if err := writeFile(o.ReportFile, func(w io.Writer) error { return bench.WriteReport(w, res, time.Now()) }); err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	return nil
}

func writeFile(name string, fn func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
