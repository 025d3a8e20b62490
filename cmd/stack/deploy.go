package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	imagecmd "github.com/microctl/microctl/cmd/image"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/compose"
	"github.com/microctl/microctl/pkg/registry"
	stk "github.com/microctl/microctl/pkg/stack"
)

type dockerClient = client.APIClient

// Options are the inputs of `microctl deploy`.
type Options struct {
	IO     *cmdutil.IOStreams
	Docker func() (dockerClient, error)
	Consul func() (*registry.Client, error)
	Dial   registry.AgentDialer

	Files             []string
	Stack             string
	EnvFiles          []string
	Profiles          []string
	Prune             bool
	Detach            bool
	Timeout           time.Duration
	RollbackOnFailure bool
	ResolveImage      string
	DryRun            bool
	Output            cmdutil.Format
	NoMesh            bool
	MinHealthy        time.Duration
	HealthyDeadline   time.Duration
	Canary            uint64
	CanaryCheck       string
	PushImages        bool
	Push              imagecmd.NodeFlags
	f                 *cmdutil.Factory
}

// NewCmdDeploy builds the command. runF replaces the run function in tests
// that only check flag parsing.
func NewCmdDeploy(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Docker: f.Docker, Consul: f.Consul, Dial: f.AgentDialer(), f: f}
	cmd := &cobra.Command{
		Use:   "deploy -f FILE [-f FILE]... [--stack NAME]",
		Short: "Deploy a compose file to the swarm as a stack, and wait for it",
		Long: `Deploy the services of one or more compose files to Docker Swarm as a stack,
the way docker stack deploy does, and wait until every service has converged.

The files are read with compose-go: compose-spec and version-3 files, several
files merged in order, .env next to the first file (or --env-file), ${VAR},
${VAR:-default} and ${VAR:?message} interpolation, profiles (--profile or
COMPOSE_PROFILES). Options Swarm cannot honour (build, privileged,
network_mode, ...) are reported once each and ignored; a bridge network
becomes an overlay network.

First a plan: every service is create, update (with the fields that change),
unchanged, or remove (--prune). An unchanged service is not touched: no
task restarts. --dry-run prints the plan and stops.

Services start in depends_on order: a service is created or updated once
what it depends on runs (condition service_started), is healthy
(service_healthy) or has completed (service_completed_successfully, for a
job). A depends_on cycle is an error.

Configs and secrets are named after a hash of their content
(STACK_NAME-0123456789), so changed content becomes a new object the service
switches to; an old version is removed once neither a service nor its
previous spec (which a rollback returns to) uses it.

Waiting watches every service at once, with one progress line per service on
stderr: success when all have converged and stayed so for their update
monitor period (a job when it has completed); failure when an update is
paused, tasks keep failing (an image the node lacks is named as such), or
--timeout passes. --rollback-on-failure then rolls back every service the
deploy updated (Swarm's rollback to the previous spec) and removes those it
created.

Mesh services: a service that registers in Consul (declared with the deploy
label microctl.consul.service: NAME, or found registered at its tasks'
addresses) has converged only when Swarm has, every running task has exactly
one instance at its address passing continuously for --min-healthy (default:
the instance's TTL from Meta, else 10s), and no instance of a task that no
longer runs is left (microctl deregisters one through its agent when the old
task did not do it within its TTL). A new task that does not register and pass
within --healthy-deadline (default 2 x TTL, at least 30s), or goes critical,
fails the deploy. Where the file leaves update_config open, a mesh service is
updated one task at a time, start-first, with a delay of the healthy deadline
between tasks, so a bad version never takes all capacity before the gate
reacts. Consul is reached with the global Consul flags (CONSUL_HTTP_ADDR...).
--no-mesh turns the gate off.

--canary N first runs N tasks of each updated mesh service's new spec next to
the old ones, as a service STACK_SERVICE-canary under the same Consul name (so
clients send it real traffic); once the gate calls it serving, --canary-check
CMD runs (exit 0 passes). The canary is then removed; the deploy goes on only
if it passed, and otherwise exits 3 with the old version untouched.

--push-images first copies the images the stack runs from this engine to
every other node of the swarm that lacks them (as microctl image push
--all-nodes does; --engine-url says how to reach a node's engine), so a swarm
without a registry can run them. A node that cannot be reached fails the
deploy before anything is changed.

Two deploys of one stack do not run at once: the second waits for the first
(within --timeout), holding a lock on the engine (a Swarm config named
microctl-deploy-lock_STACK).

Services are named STACK_SERVICE and labelled as docker stack labels them, so
docker stack ps/rm work on what microctl deploys and the other way round.

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and
DOCKER_API_VERSION select the engine; COMPOSE_PROJECT_NAME names the stack when
neither --stack nor the file's name: does; COMPOSE_PROFILES enables profiles;
every other variable is available to ${VAR} interpolation.

--timeout bounds the whole command: reaching the engine, planning, waiting for
another deploy of the stack, and the wait for convergence; a rollback gets as
long again. Ctrl-C stops the wait and says what was done and what was not;
with --rollback-on-failure it rolls back first.

Exit codes: 0 converged, 1 error (bad file, engine refused), 2 usage,
3 the stack did not converge (rolled back with --rollback-on-failure),
130 interrupted.`,
		Example: `  microctl deploy -f examples/stack.yml --stack demo
  microctl deploy -f stack.yml -f stack.prod.yml --stack shop --dry-run
  microctl deploy -f stack.yml --stack shop --prune --rollback-on-failure --timeout 2m
  microctl deploy -f stack.yml --stack shop -o json | jq .converged`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(opts.Files) == 0 {
				return cmdutil.Usagef("give at least one compose file with -f")
			}
			if opts.Timeout <= 0 {
				return cmdutil.Usagef("--timeout must be positive")
			}
			if cmd.Flags().Changed("stack") {
				if err := cmdutil.CheckProjectName(opts.Stack); err != nil {
					return err
				}
			}
			if _, err := stk.ParseResolveImage(opts.ResolveImage); err != nil {
				return cmdutil.Usagef("%v", err)
			}
			if opts.Detach && opts.RollbackOnFailure {
				return cmdutil.Usagef("--rollback-on-failure needs to wait: it cannot be used with --detach")
			}
			if opts.Canary > 0 && (opts.NoMesh || opts.Detach) {
				return cmdutil.Usagef("--canary is judged by the mesh gate: it cannot be used with --no-mesh or --detach")
			}
			if opts.CanaryCheck != "" && opts.Canary == 0 {
				return cmdutil.Usagef("--canary-check needs --canary N")
			}
			for _, name := range []string{"engine-url", "push-parallel", "push-stall"} {
				if cmd.Flags().Changed(name) && !opts.PushImages {
					return cmdutil.Usagef("--%s goes with --push-images", name)
				}
			}
			if opts.MinHealthy < 0 || opts.HealthyDeadline < 0 {
				return cmdutil.Usagef("--min-healthy and --healthy-deadline must not be negative")
			}
			if opts.HealthyDeadline > 0 && opts.MinHealthy >= opts.HealthyDeadline {
				return cmdutil.Usagef("--healthy-deadline (%s) must be longer than --min-healthy (%s): a new instance has to register, then pass for min-healthy, within it", opts.HealthyDeadline, opts.MinHealthy)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&opts.Files, "file", "f", nil, "compose file; repeat to merge several, later ones win")
	fl.StringVarP(&opts.Stack, "stack", "s", "", "stack name (default: the file's name:, COMPOSE_PROJECT_NAME, or the directory's name)")
	fl.StringArrayVar(&opts.EnvFiles, "env-file", nil, "file of VAR=value for interpolation, instead of .env next to the first file; repeatable")
	fl.StringArrayVar(&opts.Profiles, "profile", nil, "enable services of this profile; repeatable (env COMPOSE_PROFILES)")
	fl.BoolVar(&opts.Prune, "prune", false, "remove the stack's services the file no longer has, and its networks, configs and secrets nothing uses")
	fl.BoolVarP(&opts.Detach, "detach", "d", false, "return once services are created or updated; do not wait for them to converge")
	fl.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "give up waiting after this long (exit 3)")
	fl.BoolVar(&opts.RollbackOnFailure, "rollback-on-failure", false, "if any service fails to converge, roll back the ones this deploy updated and remove the ones it created")
	fl.StringVar(&opts.ResolveImage, "resolve-image", "changed", "pin images to registry digests: always, changed (new or changed images only) or never")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print the plan and change nothing")
	fl.BoolVar(&opts.NoMesh, "no-mesh", false, "do not gate mesh services on Consul: Swarm's convergence alone")
	fl.DurationVar(&opts.MinHealthy, "min-healthy", 0, "how long a mesh service's new instance must pass continuously (default: its TTL, else 10s)")
	fl.DurationVar(&opts.HealthyDeadline, "healthy-deadline", 0, "how long a new task has to register and pass in Consul (default: 2 x TTL, at least 30s)")
	fl.Uint64Var(&opts.Canary, "canary", 0, "first run N tasks of each updated mesh service's new spec next to the old ones; deploy only if they serve (and --canary-check passes)")
	fl.StringVar(&opts.CanaryCheck, "canary-check", "", "shell command run once the canary serves; exit 0 promotes, anything else aborts (exit 3)")
	fl.BoolVar(&opts.PushImages, "push-images", false, "first copy the stack's images from this engine to every swarm node that lacks them (no registry needed)")
	opts.Push.Register(fl)
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func run(ctx context.Context, opts *Options) error {
	start := time.Now()
	resolve, _ := stk.ParseResolveImage(opts.ResolveImage)
	meshOpts := stk.MeshOptions{Off: opts.NoMesh, MinHealthy: opts.MinHealthy, HealthyDeadline: opts.HealthyDeadline,
		Deregister: registry.DeregisterOptions{Dial: opts.Dial}}
	if !opts.NoMesh && opts.Consul != nil {
		if c, err := opts.Consul(); err == nil {
			meshOpts.Consul = c
		} else {
			opts.IO.Warnf("no Consul client (%v): only services declared with the label %s are gated, and they wait for Consul", err, "microctl.consul.service")
		}
	}
	load := compose.LoadOptions{Files: opts.Files, Stack: opts.Stack, EnvFiles: opts.EnvFiles, Profiles: opts.Profiles}
	if slices.Contains(opts.Files, "-") {
		// "-" is the command's stdin, read the way every command reads a
		// file it is given: through its streams.
		b, err := opts.IO.ReadUserFile("-")
		if err != nil {
			return fmt.Errorf("read the compose file from stdin: %w", err)
		}
		load.Stdin = b
	}
	// --timeout bounds everything up to the wait too: an engine or a
	// Consul that accepts connections and never answers ends here.
	prepCtx, cancel := context.WithTimeout(ctx, opts.Timeout)
	plan, err := stk.Prepare(prepCtx, func() (stk.StackAPI, error) { return opts.Docker() }, stk.PrepareOptions{
		Load: load,
		Plan: stk.PlanOptions{ResolveImage: resolve, Prune: opts.Prune, Mesh: meshOpts},
	})
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("no answer within --timeout %s while planning (reaching the engine or Consul): %w", opts.Timeout, err)
		}
		return err
	}
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		opts.IO.Warnf("%s", w)
	}
	if opts.DryRun {
		if opts.Output.JSON() {
			return cmdutil.PrintJSON(opts.IO.Out, plan)
		}
		return renderPlan(opts.IO.Out, plan)
	}
	if !opts.Output.JSON() {
		if err := renderPlan(opts.IO.ErrOut, plan); err != nil {
			return err
		}
	}

	if opts.PushImages {
		if err := pushImages(ctx, opts, cli, plan); err != nil {
			return err
		}
	}
	if opts.Canary > 0 {
		cres, err := stk.RunCanary(ctx, cli, plan, stk.CanaryOptions{Replicas: opts.Canary, Timeout: opts.Timeout, Mesh: meshOpts,
			Reporter: newProgress(opts.IO), Check: canaryCheck(opts)})
		if err != nil {
			return err
		}
		if !cres.Passed {
			return cmdutil.Unhealthy("stack %s: canary aborted, the old version is untouched: %s", plan.Stack, cres.Reason)
		}
		fmt.Fprintln(opts.IO.ErrOut, "canary passed: promoting")
	}
	left := opts.Timeout - time.Since(start)
	if left <= 0 {
		return cmdutil.Unhealthy("stack %s: --timeout %s passed before the deploy; nothing was changed", plan.Stack, opts.Timeout)
	}
	prog := newProgress(opts.IO)
	res, err := stk.Deploy(ctx, cli, plan, stk.DeployOptions{
		Detach: opts.Detach, Timeout: left, RollbackOnFailure: opts.RollbackOnFailure, Reporter: prog, Mesh: meshOpts,
	})
	prog.Done()
	if err != nil && res != nil && res.Interrupted {
		// Say what was changed and what was not, then exit 130.
		if rerr := renderResult(opts.IO.Out, res); rerr != nil {
			return rerr
		}
		if res.RolledBack {
			return fmt.Errorf("stack %s: deploy interrupted and rolled back: %w", res.Stack, err)
		}
		return fmt.Errorf("stack %s: deploy interrupted; the services it created or updated go on converging: %w", res.Stack, err)
	}
	if err != nil {
		return err
	}
	if opts.Output.JSON() {
		if err := cmdutil.PrintJSON(opts.IO.Out, res); err != nil {
			return err
		}
	} else if err := renderResult(opts.IO.Out, res); err != nil {
		return err
	}
	switch {
	case res.RolledBack:
		return cmdutil.Unhealthy("stack %s did not converge and was rolled back: %s", res.Stack, strings.Join(res.Failures(), "; "))
	case !res.Converged:
		return cmdutil.Unhealthy("stack %s did not converge: %s", res.Stack, strings.Join(res.Failures(), "; "))
	}
	return nil
}

// pushImages copies the plan's images to the nodes that lack them, before
// anything of the stack changes.
func pushImages(ctx context.Context, opts *Options, cli dockerClient, plan *stk.Plan) error {
	imgs := plan.Images()
	if len(imgs) == 0 {
		return nil
	}
	fmt.Fprintf(opts.IO.ErrOut, "--push-images: %s to every node that lacks them\n", strings.Join(imgs, " "))
	p := &imagecmd.Pusher{F: opts.f, Flags: opts.Push, ErrOut: opts.IO.ErrOut, Progress: opts.IO.ProgressEnabled()}
	res, err := p.Push(ctx, cli, imgs, nil, true)
	if len(res) > 0 {
		if rerr := imagecmd.Render(opts.IO.ErrOut, res); rerr != nil {
			return rerr
		}
	}
	if err != nil {
		return fmt.Errorf("--push-images: %w; nothing of stack %s was changed", err, plan.Stack)
	}
	return nil
}

// canaryCheck runs --canary-check through the shell, its output on
// stderr.
func canaryCheck(opts *Options) func(context.Context) error {
	if opts.CanaryCheck == "" {
		return nil
	}
	return func(ctx context.Context) error {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", opts.CanaryCheck)
		c.Stdout, c.Stderr = opts.IO.ErrOut, opts.IO.ErrOut
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", opts.CanaryCheck, err)
		}
		return nil
	}
}

// renderPlan prints what the deploy will do, one line per object.
func renderPlan(w io.Writer, p *stk.Plan) error {
	n := p.Counts()
	fmt.Fprintf(w, "stack %s: %d to create, %d to update, %d unchanged, %d to remove\n",
		p.Stack, n[stk.ActionCreate], n[stk.ActionUpdate], n[stk.ActionUnchanged], n[stk.ActionRemove])
	t := cmdutil.NewTable(w)
	for _, s := range p.Services {
		detail := s.Image
		if s.Action == stk.ActionUpdate {
			var cs []string
			for _, c := range s.Changes {
				cs = append(cs, c.String())
			}
			detail = strings.Join(cs, ", ")
		}
		t.Row(trimEmpty("  "+string(s.Action), "service", s.FullName, detail)...)
	}
	for _, s := range p.Services {
		if s.Mesh == nil {
			continue
		}
		how := "inferred"
		if s.Mesh.Declared {
			how = "declared"
		}
		t.Row("  gate", "service", s.FullName, fmt.Sprintf("Consul %s (%s): min-healthy %gs, healthy deadline %gs; update %s",
			s.Mesh.Consul, how, s.Mesh.MinHealthy, s.Mesh.HealthyDeadline, s.Update))
	}
	for _, o := range p.Objects {
		if o.Action == stk.ActionUnchanged && o.Note == "" {
			continue
		}
		t.Row(trimEmpty("  "+string(o.Action), o.Kind, o.Name, o.Note)...)
	}
	return t.Flush()
}

// trimEmpty drops empty trailing cells, which the table would pad with
// trailing spaces.
func trimEmpty(cells ...string) []string {
	for len(cells) > 1 && cells[len(cells)-1] == "" {
		cells = cells[:len(cells)-1]
	}
	return cells
}

// renderResult prints how every service ended.
func renderResult(w io.Writer, r *stk.Result) error {
	t := cmdutil.NewTable(w, "SERVICE", "ACTION", "STATE", "TASKS", "MESSAGE")
	for _, s := range r.Services {
		tasks, phase := fmt.Sprintf("%d/%d", s.Running, s.Desired), string(s.Phase)
		if s.Phase == stk.PhaseRemoved || s.Phase == stk.PhaseWaiting || s.Phase == stk.PhaseSkipped {
			tasks = "-"
		}
		if r.Detached && !s.Phase.Terminal() {
			tasks, phase = "-", "sent" // --detach: not waited for
		}
		t.Row(trimEmpty(s.FullName, string(s.Action), phase, tasks, s.Message)...)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if r.RolledBack {
		fmt.Fprintln(w, "\nrolled back:")
		t := cmdutil.NewTable(w, "SERVICE", "WAS", "STATE", "TASKS", "MESSAGE")
		for _, s := range r.Rollback {
			t.Row(s.FullName, string(s.Action), string(s.Phase), fmt.Sprintf("%d/%d", s.Running, s.Desired), s.Message)
		}
		if err := t.Flush(); err != nil {
			return err
		}
	}
	switch {
	case r.Detached:
		fmt.Fprintf(w, "\nstack %s deployed in %.1fs (not waited for: --detach)\n", r.Stack, r.Seconds)
	case r.Converged:
		fmt.Fprintf(w, "\nstack %s converged in %.1fs\n", r.Stack, r.Seconds)
	}
	return nil
}
