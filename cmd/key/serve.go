package key

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// ServeOptions are the inputs of `microctl key serve`.
type ServeOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)
	Ring   *RingFlags

	Listen     string
	MaxAge     time.Duration
	ConsulFile string
}

// NewCmdServe builds `key serve`.
func NewCmdServe(f *cmdutil.Factory, rf *RingFlags, runF func(context.Context, *ServeOptions) error) *cobra.Command {
	opts := &ServeOptions{IO: f.IOStreams, Consul: f.Consul, Ring: rf}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the ring's public JWKS over HTTP for gateways that cannot read Consul",
		Long: `Serve the ring's public JWKS at /.well-known/jwks.json, following
<path>/jwks with a Consul blocking query (the last good set is kept while
Consul is away), and /healthz.

Caching: every response carries ETag (If-None-Match gets 304) and
Cache-Control: public, max-age=N with N drawn at random from
[--max-age/2, --max-age], so caches do not expire together. N is never
longer than half the ring's rotation period: a next key is published one
rotation before it signs, so every cache learns of it first. A --max-age
over that limit is refused.

Needs read access to <path>/ring and <path>/jwks only. Runs until Ctrl-C or
SIGTERM, then exits 0.`,
		Example: `  microctl key serve --listen 127.0.0.1:8081
  curl -i http://127.0.0.1:8081/.well-known/jwks.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := rf.validate(); err != nil {
				return err
			}
			if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
				return cmdutil.Usagef("--listen %q: %v", opts.Listen, err)
			}
			if opts.MaxAge < 2*time.Second {
				return cmdutil.Usagef("--max-age must be at least 2s")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runServe(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Listen, "listen", "127.0.0.1:8081", "address to listen on")
	fl.DurationVar(&opts.MaxAge, "max-age", keys.DefaultMaxAge, "longest Cache-Control max-age sent (at most half the ring's rotation period)")
	fl.StringVar(&opts.ConsulFile, "consul-file", "", `a JSON file {"address": ..., "token": ...} (a Docker secret) for the Consul connection`)
	_ = fl.MarkHidden("consul-file")
	return cmd
}

func runServe(ctx context.Context, opts *ServeOptions) error {
	if opts.ConsulFile != "" {
		opts.Consul = func() (*registry.Client, error) { return consulFromFile(opts.ConsulFile) }
	}
	s, err := opts.Ring.store(opts.Consul)
	if err != nil {
		return err
	}
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		opts.IO.Infof("%s key serve: %s", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, a...))
	}
	srv, err := keys.NewJWKSServer(c, s.Path(), keys.JWKSServerOptions{MaxAge: opts.MaxAge, Logf: logf})
	if err != nil {
		return cmdutil.Usagef("%v", err)
	}
	ring, err := s.Ring(ctx)
	if err != nil {
		return err
	}
	if err := srv.CheckPolicy(ring); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", opts.Listen, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = srv.Run(runCtx) }()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	logf("serving %s/jwks on http://%s/.well-known/jwks.json (max-age up to %s)", s.Path(), ln.Addr(), min(opts.MaxAge, keys.MaxAgeLimit(ring)))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logf("stopped")
	return nil
}
