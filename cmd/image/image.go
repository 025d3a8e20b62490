// Package image implements `microctl image push`: images copied from the
// local engine to other engines (or every swarm node) without a registry.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/microctl/microctl/internal/cmdutil"
	pimage "github.com/microctl/microctl/pkg/image"
)

// NodeFlags map swarm nodes to engines; `deploy --push-images` shares them.
type NodeFlags struct {
	EngineURL string
	Parallel  int
	Stall     time.Duration
}

// Register adds --engine-url, --push-parallel and --push-stall to fs.
func (n *NodeFlags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&n.EngineURL, "engine-url", pimage.DefaultEngineURL,
		"how to reach each node's engine: a template over {addr} and {hostname} (unix://, tcp:// or ssh://user@host)")
	fs.IntVar(&n.Parallel, "push-parallel", 4, "how many engines receive images at once")
	fs.DurationVar(&n.Stall, "push-stall", 2*time.Minute, "abandon a transfer that makes no progress for this long")
}

// Options are the inputs of `image push`.
type Options struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)
	f      *cmdutil.Factory

	Images   []string
	To       []string
	AllNodes bool
	Nodes    NodeFlags
	Output   cmdutil.Format
}

// NewCmdImage builds `image` and its subcommands.
func NewCmdImage(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Copy images to other engines without a registry",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdPush(f, nil))
	return cmd
}

// NewCmdPush builds `image push`.
func NewCmdPush(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Docker: f.Docker, f: f}
	cmd := &cobra.Command{
		Use:   "push IMAGE... (--to ENGINE... | --all-nodes)",
		Short: "Copy images from the local engine to other engines, or to every swarm node",
		Long: `Copy IMAGEs from the engine at DOCKER_HOST to other Docker Engines, with no
registry: the local engine's 'docker save' is streamed into each target's
'docker load', targets in parallel. Swarm pulls a task's image on the node
the task lands on; without a registry a node that lacks the image never
starts the task.

ENGINE is unix:///path/docker.sock, tcp://host:port, or ssh://[user@]host[:port]
(ssh runs 'docker system dial-stdio' on the host, as 'docker -H ssh://' does;
it needs a key or agent: there is no password prompt).

--all-nodes sends to every node of the swarm (DOCKER_HOST must be a manager),
except the local one; --engine-url says how to reach a node's engine, with
{addr} (the node's address) and {hostname} in it.

A target that already has the same image ID under the name is skipped; one
that has the ID under another name gets a tag, and nothing is sent. After a
load, each name is inspected on the target and must be the source's ID.

Exit codes: 0 every target has every image, 1 some target failed (the others
were served all the same).

JSON fields: target, url, images (image, id, status: present, tagged, sent,
failed), bytes_sent, seconds, error.`,
		Example: `  microctl image push microctl/greeter:dev --to ssh://admin@10.0.0.12
  microctl image push microctl/greeter:dev microctl/gateway:dev --all-nodes
  microctl image push app:1 --all-nodes --engine-url 'tcp://{hostname}:2375'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Images = args
			if len(opts.To) == 0 && !opts.AllNodes {
				return cmdutil.Usagef("say where to: --to ENGINE or --all-nodes")
			}
			for _, t := range opts.To {
				if _, err := pimage.ParseEngineURL(t); err != nil {
					return cmdutil.Usagef("--to: %v", err)
				}
			}
			if _, err := pimage.EngineURL(opts.Nodes.EngineURL, "10.0.0.1", "node"); err != nil {
				return cmdutil.Usagef("%v", err)
			}
			if opts.Nodes.Parallel < 1 || opts.Nodes.Stall <= 0 {
				return cmdutil.Usagef("--push-parallel and --push-stall must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runPush(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringSliceVar(&opts.To, "to", nil, "engine to send to (repeatable)")
	cmd.Flags().BoolVar(&opts.AllNodes, "all-nodes", false, "send to every node of the swarm")
	opts.Nodes.Register(cmd.Flags())
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func runPush(ctx context.Context, opts *Options) error {
	src, err := opts.Docker()
	if err != nil {
		return err
	}
	p := &Pusher{F: opts.f, Flags: opts.Nodes, ErrOut: opts.IO.ErrOut, Progress: opts.IO.ProgressEnabled()}
	res, err := p.Push(ctx, src, opts.Images, opts.To, opts.AllNodes)
	if res == nil {
		return err
	}
	if opts.Output.JSON() {
		if jerr := cmdutil.PrintJSON(opts.IO.Out, res); jerr != nil {
			return jerr
		}
		return err
	}
	if rerr := Render(opts.IO.Out, res); rerr != nil {
		return rerr
	}
	return err
}

// Pusher pushes images the way `image push` does; deploy --push-images
// uses it too.
type Pusher struct {
	F        *cmdutil.Factory
	Flags    NodeFlags
	ErrOut   io.Writer
	Progress bool // a terminal: redraw one line per target
}

// Push sends images from src to the engines at urls and, with allNodes,
// to every other node of src's swarm. Results come back even on failure.
func (p *Pusher) Push(ctx context.Context, src client.APIClient, images, urls []string, allNodes bool) ([]pimage.Result, error) {
	d, err := p.F.Timeout.Duration()
	if err != nil {
		return nil, err
	}
	if d == 0 {
		d = cmdutil.DefaultTimeout
	}
	srcImages, err := pimage.Resolve(ctx, src, images, d)
	if err != nil {
		return nil, err
	}
	type named struct{ name, url string }
	var dests []named
	for _, u := range urls {
		dests = append(dests, named{name: u, url: u})
	}
	var down []pimage.Result
	if allNodes {
		nodes, err := pimage.NodeEngines(ctx, src, p.Flags.EngineURL)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			switch {
			case n.Self:
				continue
			case n.State != "ready":
				// Not tried: the engine behind a down node would only
				// time out. Reported as failed so that the exit says so.
				down = append(down, pimage.Result{Target: n.Hostname, URL: n.URL,
					Err: fmt.Errorf("node is %s: not tried", n.State), Error: fmt.Sprintf("node is %s: not tried", n.State)})
				continue
			}
			dests = append(dests, named{name: n.Hostname, url: n.URL})
		}
	}
	var targets []pimage.Target
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	for _, dst := range dests {
		copts, err := pimage.ClientOptions(dst.url)
		if err != nil {
			return nil, err
		}
		// Each request is bounded by the push itself (call timeout, stall
		// watchdog), not by --timeout: a load answers only once the whole
		// archive is in.
		c, err := client.NewClientWithOpts(append(copts, cmdutil.BoundDocker(0))...)
		if err != nil {
			return nil, fmt.Errorf("engine %s: %w", dst.url, err)
		}
		closers = append(closers, c)
		targets = append(targets, pimage.Target{Name: dst.name, URL: dst.url, Engine: c})
	}
	if len(targets) == 0 && len(down) == 0 {
		fmt.Fprintln(p.ErrOut, "image push: no other node in the swarm: nothing to send")
		return []pimage.Result{}, nil
	}
	prog := newProgress(p.ErrOut, p.Progress)
	res, err := pimage.Push(ctx, src, srcImages, targets,
		pimage.WithProgress(prog.event), pimage.WithCallTimeout(d),
		pimage.WithParallel(p.Flags.Parallel), pimage.WithStall(p.Flags.Stall))
	res = append(res, down...)
	if len(down) > 0 {
		var errs []error
		for _, r := range down {
			errs = append(errs, fmt.Errorf("%s: %w", r.Target, r.Err))
		}
		if err != nil {
			errs = append([]error{err}, errs...)
		} else {
			errs = append([]error{pimage.ErrPartial}, errs...)
		}
		err = errors.Join(errs...)
	}
	return res, err
}

// progress writes one line per event when stderr is not a terminal, and
// redraws one status line per target when it is.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	order []string
	state map[string]string
	drawn int
}

func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, state: map[string]string{}}
}

func (p *progress) event(e pimage.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := cmdutil.Sanitize(e.Target)
	var line string
	switch e.Kind {
	case pimage.EventChecked:
		if len(e.Images) == 0 {
			line = "has everything"
		} else {
			line = "sending " + cmdutil.Sanitize(strings.Join(e.Images, " "))
		}
	case pimage.EventProgress:
		if !p.tty {
			return // a line per chunk would flood a log
		}
		line = "sent " + units.HumanSize(float64(e.Bytes))
	case pimage.EventDone:
		if e.Result.Err != nil {
			line = "failed: " + cmdutil.Sanitize(e.Result.Error)
		} else {
			line = fmt.Sprintf("done (%s in %.1fs)", units.HumanSize(float64(e.Result.Bytes)), e.Result.Seconds)
		}
	}
	if _, ok := p.state[name]; !ok {
		p.order = append(p.order, name)
	}
	p.state[name] = line
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %s\n", name, line)
		return
	}
	p.redraw()
}

func (p *progress) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, n := range p.order {
		fmt.Fprintf(p.w, "\x1b[2K%s: %s\n", n, p.state[n])
	}
	p.drawn = len(p.order)
}

// Render prints the summary: one row per target and image.
func Render(w io.Writer, res []pimage.Result) error {
	rows := append([]pimage.Result(nil), res...)
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Target < rows[j].Target })
	t := cmdutil.NewTable(w, "TARGET", "IMAGE", "ID", "RESULT", "SENT")
	for _, r := range rows {
		if len(r.Images) == 0 {
			t.Row(cmdutil.Cell(r.Target), "-", "-", "failed: "+cmdutil.Cell(r.Error), "-")
			continue
		}
		for i, im := range r.Images {
			result := string(im.Status)
			switch im.Status {
			case pimage.StatusPresent:
				result = "skipped (same ID already there)"
			case pimage.StatusTagged:
				result = "tagged (ID already there)"
			case pimage.StatusFailed:
				result = "failed: " + cmdutil.Cell(r.Error)
			}
			sent := "-"
			if i == 0 && r.Bytes > 0 {
				sent = units.HumanSize(float64(r.Bytes))
			}
			t.Row(cmdutil.Cell(r.Target), cmdutil.Cell(im.Ref), shortID(im.ID), result, sent)
		}
	}
	return t.Flush()
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
