package health

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/health/hooks"
)

// HookOptions are `health watch`'s alert flags.
type HookOptions struct {
	Exec        string
	Webhook     string
	On          []string
	Timeout     time.Duration
	Concurrency int
	Retries     int
}

func (h *HookOptions) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&h.Exec, "exec", "", "run this command (with /bin/sh -c) once per event, the event's JSON on stdin")
	fl.StringVar(&h.Webhook, "webhook", "", "POST each event's JSON to this URL, with retries and back-off")
	fl.StringSliceVar(&h.On, "on", nil, "run hooks only for these events: "+strings.Join(hooks.Filters, ", ")+" (default: every event)")
	fl.DurationVar(&h.Timeout, "hook-timeout", 10*time.Second, "time limit of one --exec run or one --webhook attempt")
	fl.IntVar(&h.Concurrency, "hook-concurrency", 4, "hooks running at once")
	fl.IntVar(&h.Retries, "webhook-retries", 3, "retries of a failed --webhook (network errors, 5xx, 429)")
}

func (h *HookOptions) validate() error {
	for _, o := range h.On {
		if !slices.Contains(hooks.Filters, o) {
			return cmdutil.Usagef("--on %q: must be one of %s", o, strings.Join(hooks.Filters, ", "))
		}
	}
	if len(h.On) > 0 && h.Exec == "" && h.Webhook == "" {
		return cmdutil.Usagef("--on filters hooks: give --exec or --webhook too")
	}
	if h.Webhook != "" {
		u, err := url.Parse(h.Webhook)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cmdutil.Usagef("--webhook %q: want an http:// or https:// URL", h.Webhook)
		}
	}
	switch {
	case h.Timeout <= 0:
		return cmdutil.Usagef("--hook-timeout must be positive")
	case h.Concurrency < 1:
		return cmdutil.Usagef("--hook-concurrency must be at least 1")
	case h.Retries < 0:
		return cmdutil.Usagef("--webhook-retries must not be negative")
	}
	return nil
}

// runningHooks is the dispatcher, or nothing when no hook was asked for.
type runningHooks struct {
	d       *hooks.Dispatcher
	timeout time.Duration
}

func (h *HookOptions) start(errOut io.Writer) runningHooks {
	if h.Exec == "" && h.Webhook == "" {
		return runningHooks{}
	}
	// Failures come from several workers: one line each, never interleaved.
	var mu sync.Mutex
	d := hooks.New(hooks.WithExec(h.Exec), hooks.WithWebhook(h.Webhook), hooks.WithFilter(h.On...),
		hooks.WithTimeout(h.Timeout), hooks.WithConcurrency(h.Concurrency),
		hooks.WithRetries(h.Retries, 500*time.Millisecond, 10*time.Second),
		hooks.WithOnFailure(func(f hooks.Failure) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(errOut, "warning: %s\n", textutil.OneLine(f.Error()))
		}))
	return runningHooks{d: d, timeout: h.Timeout}
}

func (r runningHooks) handle(e health.Event) {
	if r.d != nil {
		r.d.Handle(e)
	}
}

// close lets hooks already started finish, within one hook timeout (plus
// the webhook's back-off would be too long for a Ctrl-C).
func (r runningHooks) close(errOut io.Writer) {
	if r.d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if err := r.d.Close(ctx); err != nil {
		fmt.Fprintln(errOut, "warning: hooks still running at exit were stopped")
	}
}
