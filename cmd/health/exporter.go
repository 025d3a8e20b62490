package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health/exporter"
	"github.com/microctl/microctl/pkg/registry"
)

// ExporterOptions are the inputs of `microctl health exporter`.
type ExporterOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)

	Listen   string
	Services []string
	Stream
}

// NewCmdExporter builds `health exporter`.
func NewCmdExporter(f *cmdutil.Factory, runF func(context.Context, *ExporterOptions) error) *cobra.Command {
	opts := &ExporterOptions{IO: f.IOStreams, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "exporter [SERVICE...]",
		Short: "Serve the health of every instance as Prometheus metrics on /metrics",
		Long: `Serve /metrics in Prometheus' exposition format (Prometheus' own Go client
library): per instance and check, status, seconds in state, transitions,
flapping, and TTL and interval when known; per service, instances by status;
and the number of Consul requests the exporter made.

It follows Consul the way 'health watch' does: blocking queries on every
check and on the list of services, a constant number of requests however
many services there are. A scrape renders the last state seen and makes no
Consul request (consul_exporter reads every service on every scrape).

Consul keeps no history: seconds in state and transitions count from what
the exporter saw since it started; a state that began earlier is marked
with microctl_health_check_state_before_start 1.

/healthz answers 200 once the initial read is done, 503 before.
Ctrl-C (or SIGTERM, or the end of --for) stops it with exit code 0.`,
		Example: `  microctl health exporter --listen 127.0.0.1:9107
  microctl health exporter --listen :9107 go.micro.srv.greeter --ttl 15s --interval 10s`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = dedupe(args)
			if opts.Listen == "" {
				return cmdutil.Usagef("--listen is required (host:port, e.g. 127.0.0.1:9107)")
			}
			if err := opts.Stream.validate(); err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
				return cmdutil.Usagef("--listen %q: %v (want host:port)", opts.Listen, err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return exporterRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Listen, "listen", "", "address to serve /metrics on, host:port")
	opts.Stream.addFlags(cmd)
	return cmd
}

func exporterRun(ctx context.Context, opts *ExporterOptions) error {
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	ctx, cancel := opts.bound(ctx)
	defer cancel()
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	e := exporter.New(c, exporter.WithServices(opts.Services...), exporter.WithDefaults(opts.Defaults),
		exporter.WithWait(opts.Wait), exporter.WithFlapping(opts.FlapTransitions, opts.FlapWindow),
		exporter.WithOnError(func(err error, retry time.Duration) {
			opts.IO.Warnf("%v; retrying in %s", err, retry.Round(100*time.Millisecond))
		}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.Registry(), promhttp.HandlerOpts{ErrorLog: nil, Timeout: 30 * time.Second}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.Ready() {
			http.Error(w, "initial read not done", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	opts.IO.Infof("serving http://%s/metrics (Consul at %s; Ctrl-C to stop)", ln.Addr(), c.Addr)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- e.Run(runCtx) }()
	var result error
	select {
	case err := <-runErr:
		result = err // nil when ctx ended; the initial read's error otherwise
	case err := <-serveErr:
		stop()
		<-runErr
		result = fmt.Errorf("serve %s: %w", opts.Listen, err)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, http.ErrServerClosed) && result == nil {
		result = err
	}
	return result
}
