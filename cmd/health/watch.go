package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// WatchOptions are the inputs of `microctl health watch`.
type WatchOptions struct {
	IO     *cmdutil.IOStreams
	Consul func() (*registry.Client, error)

	Services []string
	Stream
	Output cmdutil.Format
	Hooks  HookOptions
}

// Stream holds the flags watch and exporter share: both follow Consul
// with blocking queries and report flapping, for a while or until Ctrl-C.
type Stream struct {
	Defaults        health.Defaults
	FlapTransitions int
	FlapWindow      time.Duration
	Wait            time.Duration
	For             time.Duration
}

func (s *Stream) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&s.FlapTransitions, "flap-transitions", 4, "transitions within --flap-window that make a check flapping")
	fl.DurationVar(&s.FlapWindow, "flap-window", 10*time.Minute, "window for --flap-transitions")
	fl.DurationVar(&s.Wait, "wait", 5*time.Minute, "how long one blocking query may wait for a change (Consul's maximum is 10m)")
	fl.DurationVar(&s.For, "for", 0, "stop after this long (default: until Ctrl-C)")
	addTimingFlags(cmd, &s.Defaults)
}

// validate refuses values that cannot work, as usage errors.
func (s *Stream) validate() error {
	switch {
	case s.FlapTransitions < 2:
		return cmdutil.Usagef("--flap-transitions must be at least 2")
	case s.FlapWindow <= 0:
		return cmdutil.Usagef("--flap-window must be positive")
	case s.Wait < time.Second || s.Wait > 10*time.Minute:
		return cmdutil.Usagef("--wait must be between 1s and 10m (Consul's maximum)")
	case s.For < 0:
		return cmdutil.Usagef("--for must not be negative")
	}
	return nil
}

// bound returns ctx cut after --for, when given.
func (s *Stream) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.For > 0 {
		return context.WithTimeout(ctx, s.For)
	}
	return ctx, func() {}
}

// NewCmdWatch builds `health watch`.
func NewCmdWatch(f *cmdutil.Factory, runF func(context.Context, *WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{IO: f.IOStreams, Consul: f.Consul}
	cmd := &cobra.Command{
		Use:   "watch [SERVICE...]",
		Short: "Follow registrations, deregistrations and check transitions as they happen",
		Long: `Follow every change to the instances of the given services (all when none is
given) and print one timestamped event per change:

  registered      an instance appeared (with its address, version, status)
  deregistered    an instance went (with how long it had been in its last status)
  transition      a check changed status, e.g. passing -> critical (with how
                  long it had been in the previous one)
  check_added     a check appeared on an instance that was already there
  check_removed   a check went from an instance that stays
  flapping        a check changed status --flap-transitions times within
                  --flap-window; reported once per episode

Time in a state is measured from the transitions the watch sees: Consul
records no time of change. For a state that began before the watch did,
the time shown is counted from the watch's start and marked ">=".

It uses Consul's blocking queries (index and wait) on every check and on
the list of services, a constant two requests in flight however many
services there are; each response carries the whole new state, so a change
shows within a moment. A query that returns without a change is not
repeated sooner than every 500ms; an index that goes backwards restarts
from scratch; errors are retried with a doubling, jittered back-off
(printed on stderr) and never end the watch.

-o json prints one JSON object per event, one per line.

Alerts: --exec CMD runs CMD (with /bin/sh -c) once per event, the event's
JSON (as -o json prints it) on stdin and MICROCTL_EVENT_TYPE, _TIME,
_SERVICE, _INSTANCE, _NODE, _CHECK, _CHECK_TYPE, _FROM, _TO, _STATUS and
_ADDRESS in its environment. --webhook URL POSTs the same JSON, retrying
network errors, 5xx and 429 with a doubling, jittered back-off. --on
keeps only some events: critical, warning, passing (a check or a new
instance entering that status), flapping, deregistered, registered,
transition, check_added, check_removed. Each run or attempt has
--hook-timeout; at most --hook-concurrency run at once and up to 64
events wait, so a slow hook never stalls the watch (an event that finds
the queue full is dropped and named on stderr). Hook failures are
reported on stderr and never end the watch.

Ctrl-C (or SIGTERM, or the end of --for) ends the watch with exit code 0:
a watch runs until it is stopped, so being stopped is its normal end.`,
		Example: `  microctl health watch
  microctl health watch go.micro.srv.greeter -o json | jq -c 'select(.event == "transition")'
  microctl health watch --for 10m --flap-transitions 3 --flap-window 2m
  microctl health watch --on critical,flapping,deregistered --exec 'jq -c . >> /var/log/alerts.jsonl'
  microctl health watch --on critical --webhook http://127.0.0.1:9000/alert`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = dedupe(args)
			if err := opts.Stream.validate(); err != nil {
				return err
			}
			if err := opts.Hooks.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return watchRun(cmd.Context(), opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	opts.Stream.addFlags(cmd)
	opts.Hooks.addFlags(cmd)
	return cmd
}

func watchRun(ctx context.Context, opts *WatchOptions) error {
	c, err := opts.Consul()
	if err != nil {
		return err
	}
	ctx, cancel := opts.bound(ctx)
	defer cancel()
	if len(opts.Services) > 0 {
		names, err := c.ServiceNames(ctx)
		if err != nil {
			return err
		}
		for _, s := range opts.Services {
			if err := health.CheckServices([]string{s}, names, false); err != nil {
				opts.IO.Warnf("%v; watching for it", err)
			}
		}
	}
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetEscapeHTML(false)
	hooks := opts.Hooks.start(opts.IO.ErrOut)
	defer hooks.close(opts.IO.ErrOut)
	var werr error
	w := health.NewWatcher(c, health.WatchOptions{
		Services: opts.Services, Defaults: opts.Defaults, Wait: opts.Wait,
		FlapTransitions: opts.FlapTransitions, FlapWindow: opts.FlapWindow,
		OnError: func(err error, retry time.Duration) {
			opts.IO.Warnf("%v; retrying in %s", err, retry.Round(100*time.Millisecond))
		},
		Ready: func(ins []health.Instance) {
			n := map[string]bool{}
			for _, in := range ins {
				n[in.Service] = true
			}
			opts.IO.Infof("watching %d instance(s) of %d service(s) at %s (Ctrl-C to stop)", len(ins), len(n), c.Addr)
		},
	})
	err = w.Run(ctx, func(e health.Event) {
		hooks.handle(e)
		if werr != nil {
			return
		}
		if opts.Output.JSON() {
			werr = enc.Encode(e)
			return
		}
		_, werr = io.WriteString(opts.IO.Out, FormatEvent(e)+"\n")
	})
	if err != nil {
		return err
	}
	return werr
}

// FormatEvent renders an event as one line for people.
func FormatEvent(e health.Event) string {
	ts := e.Time.Format("2006-01-02T15:04:05.000Z07:00")
	subject := e.Service + " " + e.Instance
	if e.Instance == "" {
		subject = "node " + e.Node
	}
	var detail string
	switch e.Type {
	case health.EventRegistered:
		detail = fmt.Sprintf("at %s on node %s, version %s, %s", orDash(e.Address), e.Node, orDash(e.Version), e.Status)
		if e.TTL != nil {
			detail += ", ttl " + *e.TTL
		}
	case health.EventDeregistered:
		detail = "from node " + e.Node
		if e.Status != "" {
			detail += fmt.Sprintf(" (was %s for %s)", e.Status, since(e))
		}
	case health.EventTransition:
		detail = fmt.Sprintf("%s (%s): %s -> %s after %s", e.Check, e.Kind, e.From, e.To, since(e))
		if e.Output != "" {
			detail += ": " + truncate(e.Output, 80)
		}
	case health.EventCheckAdded:
		detail = fmt.Sprintf("%s (%s) added, %s", e.Check, e.Kind, e.To)
	case health.EventCheckRemoved:
		detail = fmt.Sprintf("%s (%s) removed, was %s", e.Check, e.Kind, e.From)
	case health.EventReconnected:
		subject, detail = "consul", e.Output
	case health.EventFlapping:
		detail = fmt.Sprintf("%s (%s) is flapping: %d transitions within %s, now %s", e.Check, e.Kind, e.Transitions,
			e.Window.Duration(), e.To)
	}
	return cmdutil.Sanitize(strings.Join([]string{ts, fmt.Sprintf("%-13s", e.Type), subject, detail}, " "))
}

func since(e health.Event) string {
	if e.PreviousFor == nil {
		return "?"
	}
	d := e.PreviousFor.Duration().Round(100 * time.Millisecond).String()
	if e.PreviousAtLeast {
		return ">=" + d + " (since the watch started)"
	}
	return d
}
