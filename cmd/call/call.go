// Package call implements `microctl call`: call one endpoint of a go-micro
// service found in Consul, the post-deploy smoke test.
package call

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/call"
)

// Options are the inputs of `microctl call`.
type Options struct {
	IO *cmdutil.IOStreams
	// Registry is Consul (a fake in tests).
	Registry func() (call.Registry, error)

	Service  string
	Endpoint string
	Body     string // -d or the third argument; "-" reads stdin
	Instance string
	All      bool
	Timeout  time.Duration
	Headers  []string
	Output   cmdutil.Format
}

// NewCmdCall builds `call`.
func NewCmdCall(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Registry: func() (call.Registry, error) {
		c, err := f.Consul()
		if err != nil {
			return nil, err
		}
		return c, nil
	}}
	cmd := &cobra.Command{
		Use:   "call SERVICE ENDPOINT [JSON]",
		Short: "Call an endpoint of a go-micro service found in Consul",
		Long: `Call ENDPOINT (e.g. Greeter.Hello) of SERVICE on a passing instance found in
Consul, the way go-micro's client does over its default HTTP transport:
POST / with Content-Type application/json, the request JSON as the body, and
the headers Micro-Service, Micro-Endpoint, Micro-Method and Micro-Id. The
answer is the response JSON, or a go-micro error in the Micro-Error header.
An endpoint registered with HTTP metadata (method and path in its e- tag) is
called as plain HTTP with that method and path.

The request JSON is the third argument, -d, or stdin with "-" (default {}).
-H k=v sends go-micro metadata (as headers). --all calls every passing
instance, one row each: the smoke test after a deploy. --instance calls one
instance by its ID, whatever its health.

The answer is pretty-printed on a terminal and written as it came when
piped. Exit codes: 0 the call succeeded; 1 a transport error, an HTTP error
or a go-micro error (its detail on one line), or nothing to call (unknown
service or endpoint, no passing instance); 3 with --all when some instances
failed; 2 usage.`,
		Example: `  microctl call go.micro.srv.greeter Greeter.Call '{"name": "alice"}'
  echo '{"name": "bob"}' | microctl call go.micro.srv.greeter Greeter.Call -
  microctl call go.micro.srv.greeter Greeter.Hello --all
  microctl call go.micro.srv.greeter Greeter.Call -d '{"name": "x"}' -H X-Trace=abc -o json`,
		Args: cobra.RangeArgs(2, 3),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			return complete(cmd.Context(), opts, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service, opts.Endpoint = args[0], args[1]
			if len(args) == 3 {
				if cmd.Flags().Changed("data") {
					return cmdutil.Usagef("give the request JSON once: as the third argument or with -d")
				}
				opts.Body = args[2]
			}
			if opts.All && opts.Instance != "" {
				return cmdutil.Usagef("--all and --instance exclude each other")
			}
			if opts.Timeout <= 0 {
				return cmdutil.Usagef("--timeout must be positive")
			}
			for _, h := range opts.Headers {
				if k, _, ok := strings.Cut(h, "="); !ok || strings.TrimSpace(k) == "" {
					return cmdutil.Usagef("-H %q: want KEY=VALUE", h)
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Body, "data", "d", "", `request JSON ("-": read stdin; default {})`)
	fl.StringVar(&opts.Instance, "instance", "", "call this instance ID only, whatever its health")
	fl.BoolVar(&opts.All, "all", false, "call every passing instance, a row each (exit 3 when some fail)")
	fl.DurationVar(&opts.Timeout, "timeout", call.DefaultTimeout, "time allowed for each instance to answer")
	fl.StringArrayVarP(&opts.Headers, "header", "H", nil, "metadata KEY=VALUE sent as a header (repeatable)")
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func complete(ctx context.Context, opts *Options, args []string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 1 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := opts.Registry()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	var names []string
	if len(args) == 0 {
		names, err = c.ServiceNames(ctx)
	} else {
		names, err = call.Endpoints(ctx, c, args[0])
	}
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func run(ctx context.Context, opts *Options) error {
	body, err := readBody(opts)
	if err != nil {
		return err
	}
	if len(body) > 0 && !json.Valid(body) {
		return cmdutil.Usagef("the request is not valid JSON: %s", preview(body))
	}
	c, err := opts.Registry()
	if err != nil {
		return err
	}
	callOpts := []call.Option{call.WithTimeout(opts.Timeout)}
	if opts.All {
		callOpts = append(callOpts, call.WithAll())
	}
	if opts.Instance != "" {
		callOpts = append(callOpts, call.WithInstance(opts.Instance))
	}
	for _, h := range opts.Headers {
		k, v, _ := strings.Cut(h, "=")
		callOpts = append(callOpts, call.WithMetadata(strings.TrimSpace(k), v))
	}
	res, err := call.Call(ctx, c, call.Request{Service: opts.Service, Endpoint: opts.Endpoint, Body: body}, callOpts...)
	if err != nil {
		return err
	}
	return render(opts, res)
}

func readBody(opts *Options) ([]byte, error) {
	if opts.Body != "-" {
		return []byte(strings.TrimSpace(opts.Body)), nil
	}
	b, err := io.ReadAll(io.LimitReader(opts.IO.In, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the request from stdin: %w", err)
	}
	return bytes.TrimSpace(b), nil
}

func preview(b []byte) string {
	s := string(b)
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return fmt.Sprintf("%q", s)
}

func render(opts *Options, res *call.Result) error {
	out := opts.IO.Out
	if opts.Output.JSON() {
		if err := cmdutil.PrintJSON(out, res); err != nil {
			return err
		}
		return verdict(opts, res)
	}
	if !opts.All {
		o := res.Calls[0]
		if !o.OK() {
			return fmt.Errorf("%s on %s (%s): %s", res.Endpoint, o.Instance, o.Address, o.Error)
		}
		writeAnswer(opts.IO, o.Body())
		return nil
	}
	proto := res.Protocol
	if res.Method != "" {
		proto += " " + res.Method + " " + res.Path
	}
	opts.IO.Infof("%s %s (%s) on %d passing instance(s) of %d", res.Service, res.Endpoint, proto, len(res.Calls), res.Instances)
	t := cmdutil.NewTable(out, "INSTANCE", "ADDRESS", "STATUS", "MS", "ANSWER")
	for _, o := range res.Calls {
		status, answer := "ok", textutil.OneLine(string(o.Body()))
		if !o.OK() {
			status, answer = "FAIL", o.Error
		}
		t.Row(o.Instance, o.Address, status, fmt.Sprintf("%.1f", o.Millis), clip(cmdutil.SanitizeText(answer), 100))
	}
	if err := t.Flush(); err != nil {
		return err
	}
	return verdict(opts, res)
}

// verdict maps the outcome to the exit code: one call that failed is an
// error (1); --all with some failures ran fine but found the service
// unhealthy (3).
func verdict(opts *Options, res *call.Result) error {
	failed := res.Failed()
	switch {
	case failed == 0:
		return nil
	case opts.All:
		return cmdutil.Unhealthy("%d of %d instance(s) of %s failed %s", failed, len(res.Calls), res.Service, res.Endpoint)
	}
	if opts.Output.JSON() {
		return cmdutil.ErrSilent // the error is in the JSON; exit 1
	}
	o := res.Calls[0]
	return fmt.Errorf("%s on %s (%s): %s", res.Endpoint, o.Instance, o.Address, o.Error)
}

// writeAnswer pretty-prints a JSON answer on a terminal and writes any
// answer as it came when piped.
func writeAnswer(io *cmdutil.IOStreams, b []byte) {
	if !io.IsStdoutTTY() {
		_, _ = io.Out.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' && json.Valid(b) {
			_, _ = io.Out.Write([]byte("\n"))
		}
		return
	}
	var buf bytes.Buffer
	if json.Valid(b) && json.Indent(&buf, b, "", "  ") == nil {
		buf.WriteByte('\n')
		_, _ = io.Out.Write(buf.Bytes())
		return
	}
	s := cmdutil.SanitizeText(string(b))
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	fmt.Fprint(io.Out, s)
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
