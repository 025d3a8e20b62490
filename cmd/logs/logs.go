// Package logs implements `microctl logs`: the merged logs of a stack's or
// of named services' tasks.
package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/logs"
	"github.com/microctl/microctl/pkg/registry"
)

// Options are the inputs of `microctl logs`.
type Options struct {
	IO     *cmdutil.IOStreams
	Docker func() (client.APIClient, error)
	Consul func() (*registry.Client, error)

	Targets    []string
	Follow     bool
	Since      string
	Tail       int
	Grep       string
	Timestamps bool
	NoConsul   bool
	Output     cmdutil.Format
}

// NewCmdLogs builds `microctl logs`.
func NewCmdLogs(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Docker: f.Docker, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "logs STACK|SERVICE...",
		Short: "Merged logs of every task of a stack or of services, in time order",
		Long: `Print the logs of every task of the given stacks or services, merged in time
order, each line prefixed with service.slot@node (service@node for a global
service) and, when the task is a registered Consul instance (its address is
an instance's address), the instance ID. On a terminal each service has its
own colour (not with NO_COLOR, --no-color, or when piped).

Every task the engine still lists is read, so the logs of tasks that
crashed or were replaced are there too. --tail N and --since apply to each
task. -f follows: it polls the task list every 2s and starts reading every
new task (a restart, the replacements of a rolling update) from its first
line. A line may wait up to 0.5s for an earlier line of another task, so
that the merge stays in order; a quiet task never holds the others back.

A task whose logs cannot be read (its node is down, the engine refuses) is
named once on stderr; the others go on.

-o json prints one object per line: time, stack, service, slot, task, node,
instance, stream, line (and truncated when a line was cut at 16 KiB).

Environment: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH; Consul (for
the instance IDs): CONSUL_HTTP_ADDR and the other CONSUL_* variables.`,
		Example: `  microctl logs demo
  microctl logs demo -f --since 5m --grep 'error|panic'
  microctl logs demo_greeter demo_gateway --tail 20 --timestamps
  microctl logs demo -o json | jq -r 'select(.stream == "stderr") | .line'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Targets = args
			if _, err := regexp.Compile(opts.Grep); err != nil {
				return cmdutil.Usagef("--grep: %v", err)
			}
			if opts.Tail < -1 {
				return cmdutil.Usagef("--tail must be a number of lines (or -1 for all)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "follow the logs, across task restarts and updates, until Ctrl-C")
	fl.StringVar(&opts.Since, "since", "", "only lines since this time: a duration back from now (10m) or a timestamp (2026-11-27T15:04:05Z)")
	fl.IntVarP(&opts.Tail, "tail", "n", -1, "only the last N lines of each task (-1: all)")
	fl.StringVar(&opts.Grep, "grep", "", "only lines matching this regular expression (Go syntax)")
	fl.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "show each line's timestamp")
	fl.BoolVar(&opts.NoConsul, "no-consul", false, "do not look up Consul instance IDs")
	return cmd
}

// palette: foreground colours that read on dark and light backgrounds.
var palette = []string{"36", "33", "32", "35", "34", "91", "96", "93", "92", "95"}

func run(ctx context.Context, opts *Options) error {
	cli, err := opts.Docker()
	if err != nil {
		return err
	}
	lo := logs.Options{Targets: opts.Targets, Follow: opts.Follow, Since: opts.Since, Tail: opts.Tail}
	if opts.Grep != "" {
		lo.Grep = regexp.MustCompile(opts.Grep)
	}
	if !opts.NoConsul {
		if c, err := opts.Consul(); err == nil {
			lo.Catalog = c
		}
	}
	var mu sync.Mutex // notices come from reader goroutines
	lo.OnNotice = func(n logs.Notice) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case n.Kind == logs.NoticeFollowing:
			opts.IO.Infof("following new task %s (%s)", n.Task.Prefix(), short(n.Task.Task))
		case n.Task.Task != "":
			opts.IO.Warnf("logs of %s (task %s) cannot be read: %v", n.Task.Prefix(), short(n.Task.Task), n.Err)
		default:
			opts.IO.Warnf("%v", n.Err)
		}
	}
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetEscapeHTML(false)
	colours := map[string]string{}
	colour := opts.IO.ColorEnabled() && !opts.Output.JSON()
	return logs.Stream(ctx, cli, lo, func(l logs.Line) error {
		mu.Lock()
		defer mu.Unlock()
		if opts.Output.JSON() {
			return enc.Encode(l)
		}
		return writeLine(opts.IO.Out, l, opts.Timestamps, colour, colours)
	})
}

// writeLine renders one line for people. The line's text is the task's own
// output and is written as it came, as docker logs does.
func writeLine(w io.Writer, l logs.Line, timestamps, colour bool, colours map[string]string) error {
	prefix := l.Prefix()
	if l.Instance != "" {
		prefix += " " + l.Instance
	}
	if colour {
		c, ok := colours[l.Service]
		if !ok {
			c = palette[len(colours)%len(palette)]
			colours[l.Service] = c
		}
		prefix = "\x1b[" + c + "m" + prefix + "\x1b[0m"
	}
	ts := ""
	if timestamps {
		ts = l.Time.UTC().Format(time.RFC3339Nano) + " "
	}
	cut := ""
	if l.Truncated {
		cut = " [truncated]"
	}
	_, err := fmt.Fprintf(w, "%s%s | %s%s\n", ts, prefix, l.Text, cut)
	return err
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
