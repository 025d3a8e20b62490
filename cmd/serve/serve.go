// Package serve implements `microctl serve`.
package serve

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/bench"
)

// Options are the inputs of `microctl serve`.
type Options struct {
	IO *cmdutil.IOStreams

	Addr     string
	Loops    int
	BodySize int
	Echo     bool
	Engine   string
	Output   cmdutil.Format
	TLS      bool
	Cert     string
	Key      string
}

// NewCmdServe builds the command. runF replaces the run function in tests
// that only check flag parsing.
func NewCmdServe(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the built-in benchmark target: a minimal HTTP server on microctl's epoll reactor",
		Long: `Serve HTTP/1.1 on microctl's own event loops (pkg/net): every request, of
any method and path, gets 200 OK with a body of --body-size bytes
("Hello, World!" by default), with keep-alive and pipelining. It is the
target microctl bench uses when given no URL, and the server side of the
comparisons in docs/benchmarks.md.

--echo makes it a raw TCP echo server instead, the target for
microctl bench --tcp.

It runs until interrupted (Ctrl-C or SIGTERM), then prints what it served
on stderr (with -o json, on stdout as JSON).`,
		Example: `  microctl serve
  microctl serve --addr 127.0.0.1:9000 --loops 1 --body-size 1024
  microctl serve --echo --addr 127.0.0.1:9001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Loops < 0:
				return cmdutil.Usagef("--loops must not be negative")
			case opts.BodySize < 0:
				return cmdutil.Usagef("--body-size must not be negative")
			case opts.Addr == "":
				return cmdutil.Usagef("--addr must not be empty")
			}
			if err := checkAddr(opts.Addr); err != nil {
				return err
			}
			switch {
			case (opts.Cert != "" || opts.Key != "") && !opts.TLS:
				return cmdutil.Usagef("--cert and --key go with --tls")
			case (opts.Cert == "") != (opts.Key == ""):
				return cmdutil.Usagef("--cert and --key go together")
			case opts.TLS && opts.Echo:
				return cmdutil.Usagef("--tls serves HTTPS; it does not go with --echo")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Addr, "addr", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
	fl.IntVar(&opts.Loops, "loops", 0, "event loops (OS threads); default GOMAXPROCS")
	fl.IntVar(&opts.BodySize, "body-size", 13, "size of the response body in bytes")
	fl.BoolVar(&opts.Echo, "echo", false, "raw TCP echo server instead of HTTP")
	fl.BoolVar(&opts.TLS, "tls", false, "serve HTTPS: with --cert/--key, or a throwaway self-signed certificate written to a file named on start")
	fl.StringVar(&opts.Cert, "cert", "", "with --tls: the server certificate (PEM; a chain, leaf first)")
	fl.StringVar(&opts.Key, "key", "", "with --tls: the certificate's private key (PEM)")
	fl.StringVar(&opts.Engine, "engine", "", "pkg/net engine: epoll or go (default: the platform's best)")
	_ = fl.MarkHidden("engine")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func run(ctx context.Context, o *Options) error {
	sopts := []bench.ServerOption{
		bench.WithServerAddr(o.Addr),
		bench.WithBodySize(o.BodySize),
		bench.WithEcho(o.Echo),
		bench.WithServerEngine(o.Engine),
	}
	if o.Loops > 0 {
		sopts = append(sopts, bench.WithServerLoops(o.Loops))
	}
	if o.TLS {
		cfg, cleanup, err := serverTLS(o)
		if err != nil {
			return err
		}
		defer cleanup()
		sopts = append(sopts, bench.WithServerTLS(cfg))
	}
	srv, err := bench.NewServer(sopts...)
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	kind := "http://"
	if o.TLS {
		kind = "https://"
	}
	if o.Echo {
		kind = "tcp echo "
	}
	fmt.Fprintf(o.IO.ErrOut, "serve: listening on %s%s (engine %s)\n", kind, srv.Addr(), srv.Engine())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Stop(sctx); err != nil {
		return err
	}
	st := srv.Stats()
	if o.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, st)
	}
	fmt.Fprintf(o.IO.ErrOut, "serve: stopped; %d requests, %d connections, %d bytes read, %d written\n",
		st.Requests, st.Accepted, st.BytesRead, st.BytesWritten)
	return nil
}

// checkAddr validates --addr as HOST:PORT with a port from 0 to 65535.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return cmdutil.Usagef("--addr %q: %v (want HOST:PORT, e.g. 127.0.0.1:8080)", addr, addrErr(err))
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return cmdutil.Usagef("--addr %q: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

func addrErr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}

// serverTLS loads --cert/--key, or makes a self-signed certificate and
// writes it to a file for clients to trust (removed on exit).
func serverTLS(o *Options) (*tls.Config, func(), error) {
	if o.Cert != "" {
		pair, err := tls.LoadX509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, nil, cmdutil.Usagef("--cert/--key: %v", err)
		}
		return bench.ServerTLSConfig(pair), func() {}, nil
	}
	ss, err := bench.NewSelfSigned()
	if err != nil {
		return nil, nil, fmt.Errorf("making a self-signed certificate: %w", err)
	}
	f, err := os.CreateTemp("", "microctl-serve-*.pem")
	if err != nil {
		return nil, nil, fmt.Errorf("writing the self-signed certificate: %w", err)
	}
	if _, err := f.Write(ss.PEM); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, fmt.Errorf("writing the self-signed certificate: %w", err)
	}
	f.Close()
	fmt.Fprintf(o.IO.ErrOut, "serve: self-signed certificate for %s, valid until %s, sha256 %s\n",
		strings.Join(ss.Names, ", "), ss.NotAfter.UTC().Format(time.RFC3339), ss.Fingerprint)
	fmt.Fprintf(o.IO.ErrOut, "serve: written to %s (removed on exit): microctl bench --cacert %s https://ADDR/\n", f.Name(), f.Name())
	return bench.ServerTLSConfig(ss.Cert), func() { os.Remove(f.Name()) }, nil
}
