package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/bench"
	"github.com/microctl/microctl/pkg/bench/spread"
)

// DefaultWorkerImage is the static microctl image scripts/build-images.sh
// builds (make images).
const DefaultWorkerImage = "microctl/microctl:dev"

// spreadFlags are the inputs of `bench --workers`.
type spreadFlags struct {
	Workers      int
	Image        string
	Placement    []string
	ReadyTimeout time.Duration
}

func (s *spreadFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&s.Workers, "workers", 0, "run the load from N workers, one-shot tasks of a Swarm service on the cluster's nodes, sharing -c and -R (needs Consul)")
	fl.StringVar(&s.Image, "image", DefaultWorkerImage, "with --workers: the microctl image the workers run")
	fl.StringArrayVar(&s.Placement, "placement", nil, `with --workers: placement constraint, as in compose (repeatable): "node.role==worker"`)
	fl.DurationVar(&s.ReadyTimeout, "workers-ready-timeout", 2*time.Minute, "with --workers: how long the workers may take to start and reach Consul")
}

// validateSpread refuses what a worker cannot do away from this machine.
func (o *Options) validateSpread(changed func(string) bool) error {
	s := o.spread
	if s.Workers == 0 {
		for _, f := range []string{"image", "placement", "workers-ready-timeout"} {
			if changed(f) {
				return cmdutil.Usagef("--%s goes with --workers", f)
			}
		}
		return nil
	}
	bad := []struct {
		set  bool
		flag string
	}{
		{o.URL == "", "no URL (the built-in target runs in this process)"},
		{o.Service != "", "--service"},
		{o.TargetsFile != "", "--targets"},
		{o.TCP, "--tcp"},
		{o.stages != nil, "--stages and ramps"},
		{len(o.slos) > 0, "--slo"},
		{o.setN, "-n"},
		{o.TLS.CACert != "" || o.TLS.Cert != "" || o.TLS.Key != "", "--cacert, --cert and --key (files are not sent to the workers)"},
	}
	for _, b := range bad {
		if b.set {
			return cmdutil.Usagef("--workers does not go with %s", b.flag)
		}
	}
	switch {
	case s.Workers < 1:
		return cmdutil.Usagef("--workers must be at least 1")
	case o.Connections < s.Workers:
		return cmdutil.Usagef("-c %d cannot be shared by %d workers: each needs at least one connection", o.Connections, s.Workers)
	case s.ReadyTimeout <= 0:
		return cmdutil.Usagef("--workers-ready-timeout must be positive")
	case s.Image == "":
		return cmdutil.Usagef("--image must not be empty")
	}
	for _, c := range s.Placement {
		if !strings.Contains(c, "==") && !strings.Contains(c, "!=") {
			return cmdutil.Usagef("--placement %q: want a constraint such as node.role==worker", c)
		}
	}
	return nil
}

// SpreadOutput is `bench --workers -o json`: the merged result's fields,
// and the workers.
type SpreadOutput struct {
	*bench.Result
	Spread *spread.Report `json:"spread"`
}

func runSpread(ctx context.Context, o *Options) error {
	outs, err := openOutputs(o)
	if err != nil {
		return err
	}
	defer outs.abandon()
	api, err := o.Docker()
	if err != nil {
		return err
	}
	c, err := o.Consul()
	if err != nil {
		return err
	}
	headers := append([]string(nil), o.Headers...)
	if o.JWT != "" {
		tok := o.JWT
		if tok == jwtMint {
			ttl := max(o.Duration+o.Timeout+o.spread.ReadyTimeout+time.Minute, 5*time.Minute)
			if tok, err = o.MintJWT(ctx, ttl); err != nil {
				return fmt.Errorf("--jwt: %w", err)
			}
		}
		headers = append(headers, "Authorization: Bearer "+tok)
	}
	plan, err := spread.Divide(spread.WorkerSpec{
		URL: o.URL, Connections: o.Connections, Rate: o.Rate, Duration: o.Duration,
		Method: o.Method, Headers: headers, Body: o.body, Timeout: o.Timeout,
		Pipeline: o.Pipeline, Loops: o.Loops, HTTP2: o.HTTP2, Streams: o.Streams,
		Insecure: o.TLS.Insecure, ServerName: o.TLS.ServerName,
	}, o.spread.Workers)
	if err != nil {
		return cmdutil.Usagef("%v", err)
	}
	env := workerEnv(o.ConsulEnv())
	fmt.Fprintf(o.IO.ErrOut, "bench: %d workers (%s), %d connections, %s", o.spread.Workers, o.spread.Image, o.Connections, o.Duration)
	if o.Rate > 0 {
		fmt.Fprintf(o.IO.ErrOut, ", %g requests/s", o.Rate)
	}
	fmt.Fprintln(o.IO.ErrOut)
	rep, err := spread.Run(ctx, api, spread.ConsulKV{C: c}, plan,
		spread.WithImage(o.spread.Image), spread.WithPlacement(o.spread.Placement...),
		spread.WithEnv(env...), spread.WithReadyTimeout(o.spread.ReadyTimeout),
		spread.WithProgress(func(e spread.Event) {
			fmt.Fprintf(o.IO.ErrOut, "bench: %s\n", cmdutil.Sanitize(e.Message))
		}))
	if rep != nil && rep.Cleanup != "" && rep.Cleanup != "removed" {
		fmt.Fprintf(o.IO.ErrOut, "warning: %s\n", cmdutil.Sanitize(rep.Cleanup))
	}
	if rep == nil || rep.Merged == nil {
		return err
	}
	// A run that measured is shown even when its cleanup then failed (err
	// says so): the measurement is not thrown away.
	if rerr := renderSpread(o, rep); rerr != nil {
		return rerr
	}
	if werr := outs.write(rep.Merged); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if rep.Merged.Requests == 0 {
		return fmt.Errorf("no request succeeded: %s", noSuccessReason(o, rep.Merged))
	}
	return nil
}

// workerEnv passes on how to reach Consul. The token, if any, is in the
// service's spec for the length of the run (the service is removed
// afterwards); a Swarm secret would be the next step.
func workerEnv(env map[string]string) []string {
	var out []string
	for _, k := range []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_SSL", "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_SSL_VERIFY"} {
		if v := env[k]; v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func renderSpread(o *Options, rep *spread.Report) error {
	if o.Output.JSON() {
		return cmdutil.PrintJSON(o.IO.Out, SpreadOutput{Result: rep.Merged, Spread: rep})
	}
	if err := render(o, rep.Merged); err != nil {
		return err
	}
	w := o.IO.Out
	fmt.Fprintf(w, "\nworkers    %d, ready after %.1fs, load from %.1fs after the start; service %s and %s: %s\n",
		len(rep.Workers), rep.ReadySeconds, rep.StartToLoadSeconds, cmdutil.Sanitize(rep.Service), cmdutil.Sanitize(rep.Prefix), cmdutil.Sanitize(rep.Cleanup))
	t := cmdutil.NewTable(w, "SLOT", "NODE", "TASK ID", "CONNS", "RATE", "REQUESTS", "REQ/S", "P50", "P99", "ERRORS")
	for _, r := range rep.Workers {
		rate := "-"
		if r.Rate > 0 {
			rate = fmt.Sprintf("%g", r.Rate)
		}
		t.Row(fmt.Sprint(r.Slot), cmdutil.Cell(r.Node), cmdutil.Cell(shortTask(r.Task)), fmt.Sprint(r.Connections), rate,
			fmt.Sprint(r.Requests), fmt.Sprintf("%.1f", r.RequestsPerSec),
			bench.FormatUS(r.Latency.P50US), bench.FormatUS(r.Latency.P99US), fmt.Sprint(r.Errors))
	}
	return t.Flush()
}

// shortTask shortens a task name (service.slot.id) to its ID's first 12
// characters, as docker service ps shows IDs; -o json has the whole name.
func shortTask(name string) string {
	id := name[strings.LastIndex(name, ".")+1:]
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// newCmdWorker is the hidden `bench worker`: one worker of --workers, run
// inside the service's container.
func newCmdWorker(f *cmdutil.Factory) *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:    "worker --kv-prefix PREFIX",
		Short:  "One worker of bench --workers (run by the Swarm job, not by people)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if prefix == "" || !strings.HasSuffix(prefix, "/") {
				return cmdutil.Usagef("--kv-prefix PREFIX/ is required")
			}
			c, err := f.Consul()
			if err != nil {
				return err
			}
			id, err := spread.Work(cmd.Context(), spread.ConsulKV{C: c}, prefix, spread.WorkerOptions{
				Task: os.Getenv("MICROCTL_WORKER_TASK"), Node: os.Getenv("MICROCTL_WORKER_NODE"),
			})
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			fmt.Fprintf(f.IOStreams.ErrOut, "%s: result written\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "kv-prefix", "", "the run's KV prefix")
	return cmd
}

// consulEnv is the Consul connection in force (flags over environment) as
// CONSUL_* variables for the workers.
func consulEnv(f *cmdutil.Factory) map[string]string {
	cfg := f.ConsulFlags.Config()
	env := map[string]string{"CONSUL_HTTP_ADDR": cfg.Address, "CONSUL_HTTP_TOKEN": cfg.Token}
	if cfg.Scheme == "https" || strings.HasPrefix(cfg.Address, "https://") {
		env["CONSUL_HTTP_SSL"] = "true"
	}
	if cfg.TLSConfig.Address != "" {
		env["CONSUL_TLS_SERVER_NAME"] = cfg.TLSConfig.Address
	}
	if cfg.TLSConfig.InsecureSkipVerify {
		env["CONSUL_HTTP_SSL_VERIFY"] = "false"
	}
	return env
}
