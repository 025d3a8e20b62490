// Package hooks turns the events of a health watch into alerts: a command
// run once per event with the event as JSON on stdin, and a webhook posted
// the same JSON, retried with back-off. It is a consumer of the watch's
// event stream (health.Watcher's emit callback) and never blocks it: events
// are queued in a bounded queue served by a bounded number of workers, a
// full queue drops the event and says so, and every hook has a timeout.
// Hook failures are reported through a callback, never returned: an alert
// that fails must not end the watch that would send the next one.
//
// It takes the place of `consul watch -type=checks -handler`, the usual
// glue, with microctl's own events (transition, flapping, deregistered…).
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// Filters are the values --on accepts: an event type, or a status, which
// selects the events that put a check (or a new instance) in that status.
var Filters = []string{
	registry.StatusCritical, registry.StatusWarning, registry.StatusPassing,
	health.EventFlapping, health.EventDeregistered, health.EventRegistered,
	health.EventTransition, health.EventCheckAdded, health.EventCheckRemoved,
}

// Options configure a Dispatcher.
type Options struct {
	// Exec is a command line run with /bin/sh -c once per event.
	Exec string
	// Webhook is a URL the event is POSTed to.
	Webhook string
	// On filters events (see Filters); empty means every event.
	On []string
	// Timeout bounds one run of the command and one webhook attempt.
	Timeout time.Duration
	// Concurrency is how many hooks run at once.
	Concurrency int
	// Queue is how many events may wait for a worker; beyond that an event
	// is dropped (and reported), so a slow hook never stalls the watch.
	Queue int
	// Retries is how many times a failed webhook is tried again, after
	// BackoffMin, doubling (with jitter) up to BackoffMax.
	Retries                int
	BackoffMin, BackoffMax time.Duration
	// OnFailure is told about each hook that failed (and each dropped
	// event).
	OnFailure func(Failure)
	// HTTPClient posts webhooks (default: a client with no global timeout;
	// each attempt has Timeout).
	HTTPClient *http.Client
}

// Option changes Options.
type Option func(*Options)

// WithExec runs cmdline (with /bin/sh -c) once per event.
func WithExec(cmdline string) Option { return func(o *Options) { o.Exec = cmdline } }

// WithWebhook posts each event to url.
func WithWebhook(url string) Option { return func(o *Options) { o.Webhook = url } }

// WithFilter keeps only the events matching one of on.
func WithFilter(on ...string) Option { return func(o *Options) { o.On = on } }

// WithTimeout bounds one hook run or webhook attempt.
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// WithConcurrency bounds the hooks running at once.
func WithConcurrency(n int) Option { return func(o *Options) { o.Concurrency = n } }

// WithQueue bounds the events waiting for a worker.
func WithQueue(n int) Option { return func(o *Options) { o.Queue = n } }

// WithRetries sets the webhook's retries and back-off.
func WithRetries(n int, min, max time.Duration) Option {
	return func(o *Options) { o.Retries, o.BackoffMin, o.BackoffMax = n, min, max }
}

// WithOnFailure sets the failure callback.
func WithOnFailure(f func(Failure)) Option { return func(o *Options) { o.OnFailure = f } }

// WithHTTPClient sets the webhook's HTTP client.
func WithHTTPClient(c *http.Client) Option { return func(o *Options) { o.HTTPClient = c } }

// Failure is one hook that did not succeed.
type Failure struct {
	Hook     string // "exec" or "webhook"
	Event    health.Event
	Attempts int
	Err      error
}

func (f Failure) Error() string {
	subject := f.Event.Service + " " + f.Event.Instance
	if f.Event.Instance == "" {
		subject = "node " + f.Event.Node
	}
	s := fmt.Sprintf("%s hook for %s %s", f.Hook, f.Event.Type, strings.TrimSpace(subject))
	if f.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", f.Attempts)
	}
	return s + ": " + f.Err.Error()
}

// ErrDropped is the Failure.Err of an event dropped because the queue was
// full.
var ErrDropped = errors.New("dropped: the hook queue is full (hooks are slower than events arrive)")

// Dispatcher runs the hooks for the events it is handed.
type Dispatcher struct {
	opts  Options
	queue chan job
	wg    sync.WaitGroup
	ctx   context.Context
	stop  context.CancelFunc
	once  sync.Once
}

type job struct {
	hook string
	ev   health.Event
	body []byte
}

// New starts a dispatcher's workers. Close stops them.
func New(opts ...Option) *Dispatcher {
	o := Options{Timeout: 10 * time.Second, Concurrency: 4, Queue: 64, Retries: 3,
		BackoffMin: 500 * time.Millisecond, BackoffMax: 10 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	o.Concurrency, o.Queue = max(o.Concurrency, 1), max(o.Queue, 0)
	if o.OnFailure == nil {
		o.OnFailure = func(Failure) {}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	d := &Dispatcher{opts: o, queue: make(chan job, o.Queue)}
	d.ctx, d.stop = context.WithCancel(context.Background())
	for range o.Concurrency {
		d.wg.Add(1)
		go d.work()
	}
	return d
}

// Wants reports whether the filter selects e.
func Wants(on []string, e health.Event) bool {
	if len(on) == 0 {
		return true
	}
	for _, f := range on {
		switch f {
		case e.Type:
			return true
		case registry.StatusCritical, registry.StatusWarning, registry.StatusPassing:
			switch e.Type {
			case health.EventTransition, health.EventCheckAdded:
				if e.To == f {
					return true
				}
			case health.EventRegistered:
				if e.Status == f {
					return true
				}
			}
		}
	}
	return false
}

// Handle queues the hooks for e and returns at once.
func (d *Dispatcher) Handle(e health.Event) {
	if !Wants(d.opts.On, e) {
		return
	}
	body, err := json.Marshal(e)
	if err != nil { // an Event always marshals; report rather than panic
		d.opts.OnFailure(Failure{Hook: "encode", Event: e, Err: err})
		return
	}
	for _, h := range []string{"exec", "webhook"} {
		if (h == "exec" && d.opts.Exec == "") || (h == "webhook" && d.opts.Webhook == "") {
			continue
		}
		select {
		case d.queue <- job{hook: h, ev: e, body: body}:
		default:
			d.opts.OnFailure(Failure{Hook: h, Event: e, Err: ErrDropped})
		}
	}
}

// Close stops taking events and waits for the queued and running hooks
// until ctx ends; then it cancels those still running.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.once.Do(func() { close(d.queue) })
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.stop()
		return nil
	case <-ctx.Done():
		d.stop()
		<-done
		return ctx.Err()
	}
}

func (d *Dispatcher) work() {
	defer d.wg.Done()
	for j := range d.queue {
		var attempts int
		var err error
		if j.hook == "exec" {
			attempts, err = 1, d.exec(j)
		} else {
			attempts, err = d.post(j)
		}
		if err != nil {
			d.opts.OnFailure(Failure{Hook: j.hook, Event: j.ev, Attempts: attempts, Err: err})
		}
	}
}

// env is what the command gets besides the JSON on stdin.
func env(e health.Event) []string {
	vars := [][2]string{
		{"TYPE", e.Type}, {"TIME", e.Time.UTC().Format(time.RFC3339Nano)}, {"SERVICE", e.Service},
		{"INSTANCE", e.Instance}, {"NODE", e.Node}, {"CHECK", e.Check}, {"CHECK_TYPE", e.Kind},
		{"FROM", e.From}, {"TO", e.To}, {"STATUS", e.Status}, {"ADDRESS", e.Address},
	}
	out := slices.Clone(os.Environ())
	for _, v := range vars {
		out = append(out, "MICROCTL_EVENT_"+v[0]+"="+v[1])
	}
	return out
}

// outputTail bounds what is kept of a hook's output: its last bytes,
// shown when it fails.
type outputTail struct {
	buf []byte
	max int
}

func (t *outputTail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *outputTail) lastLine() string {
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (d *Dispatcher) exec(j job) error {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", d.opts.Exec)
	cmd.Stdin = bytes.NewReader(j.body)
	out := &outputTail{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env(j.ev)
	killGroup(cmd)
	// After the kill, give pipes a moment: a grandchild holding them open
	// must not hold the worker.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%q timed out after %s and was killed", d.opts.Exec, d.opts.Timeout)
	case err != nil:
		if l := out.lastLine(); l != "" {
			return fmt.Errorf("%q: %w: %s", d.opts.Exec, err, l)
		}
		return fmt.Errorf("%q: %w", d.opts.Exec, err)
	}
	return nil
}

// post sends the webhook, retrying network errors, 5xx and 429 with a
// doubling, jittered back-off; other 4xx are the receiver saying no, and
// retrying would not change its mind.
func (d *Dispatcher) post(j job) (int, error) {
	var err error
	wait := d.opts.BackoffMin
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, err = d.postOnce(j)
		if err == nil {
			return attempt, nil
		}
		if !retry || attempt > d.opts.Retries {
			return attempt, err
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-d.ctx.Done():
			t.Stop()
			return attempt, err
		case <-t.C:
		}
		wait = min(wait*2, d.opts.BackoffMax)
	}
}

func (d *Dispatcher) postOnce(j job) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.opts.Webhook, bytes.NewReader(j.body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "microctl-health-watch")
	req.Header.Set("X-Microctl-Event", j.ev.Type)
	resp, err := d.opts.HTTPClient.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	var b [512]byte
	n, _ := resp.Body.Read(b[:])
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("%s answered %s", d.opts.Webhook, resp.Status)
	if msg := strings.TrimSpace(string(b[:n])); msg != "" {
		err = fmt.Errorf("%w: %s", err, strconv.Quote(msg))
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests, err
}
