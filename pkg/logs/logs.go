// Package logs merges the logs of every task of a stack (or of named
// services) into one stream in time order, each line naming its task as
// service.slot@node and, when the task is a registered instance, its Consul
// instance ID: what `docker stack logs` would be (moby#31458).
//
// Each task is read with the engine's task logs endpoint (the manager
// relays the logs of tasks on other nodes), so the reader knows which task
// every line belongs to and which task could not be read; the streams are
// merged with one line of look-ahead per task. Following, it polls the
// task list and starts reading every new task (a restart, a rolling
// update's replacement). Memory is bounded: a bounded queue and a bounded
// line length per task, whatever the volume.
package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/microctl/microctl/internal/boundhttp"
	"github.com/microctl/microctl/pkg/registry"
	mswarm "github.com/microctl/microctl/pkg/swarm"
)

// API is the part of the Docker client the reader needs.
type API interface {
	mswarm.InfoAPI
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	NodeList(ctx context.Context, options swarm.NodeListOptions) ([]swarm.Node, error)
	TaskLogs(ctx context.Context, taskID string, options container.LogsOptions) (io.ReadCloser, error)
}

// CatalogReader finds the Consul instance a task registered (optional).
type CatalogReader interface {
	Catalog(ctx context.Context) (*registry.Catalog, error)
}

// Line is one log line. The JSON field names are `logs -o json`'s and stay
// stable.
type Line struct {
	Time     time.Time `json:"time"`
	Stack    string    `json:"stack,omitempty"`
	Service  string    `json:"service"`
	Slot     int       `json:"slot,omitempty"` // 0 for a global service's task
	Task     string    `json:"task"`
	Node     string    `json:"node"`
	Instance string    `json:"instance,omitempty"` // the Consul instance ID, when registered
	Stream   string    `json:"stream"`             // stdout or stderr
	Text     string    `json:"line"`
	// Truncated: the line was longer than the limit and was cut.
	Truncated bool `json:"truncated,omitempty"`

	arrived time.Time
}

// Prefix is the line's source as people read it: service.slot@node, or
// service@node for a global service's task.
func (l Line) Prefix() string {
	if l.Slot > 0 {
		return fmt.Sprintf("%s.%d@%s", l.Service, l.Slot, l.Node)
	}
	return l.Service + "@" + l.Node
}

// Notice is something the reader tells the person, on the side.
type Notice struct {
	Kind string // "unreadable" or "following"
	Task Line   // the task it is about (no Time or Text)
	Err  error  // for unreadable
}

const (
	NoticeUnreadable = "unreadable"
	NoticeFollowing  = "following"
)

// Options configure Stream.
type Options struct {
	// Targets are stack names or service names (or IDs).
	Targets []string
	Follow  bool
	// Since is passed to the engine: a duration ("10m") back from now or
	// a timestamp.
	Since string
	// Tail is the number of lines per task from the end; < 0 is all.
	Tail int
	Grep *regexp.Regexp
	// Catalog, when set, names the Consul instance of each task.
	Catalog CatalogReader
	// Poll is how often the task list is read while following.
	Poll time.Duration
	// Window is how long a line may wait for an earlier line of another
	// task before it is written anyway (a quiet task must not hold the
	// others back).
	Window time.Duration
	// MaxLine bounds a line; longer lines are cut and marked.
	MaxLine int
	// Queue is the lines held per task before its reader waits.
	Queue    int
	OnNotice func(Notice)
}

func (o *Options) defaults() {
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 500 * time.Millisecond
		if !o.Follow {
			o.Window = 5 * time.Second
		}
	}
	if o.MaxLine <= 0 {
		o.MaxLine = 16 << 10
	}
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.OnNotice == nil {
		o.OnNotice = func(Notice) {}
	}
}

// NotFoundError: a target is neither a stack nor a service.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string { return "no stack or service named " + strconv.Quote(e.Name) }

// Hint says what to do about it.
func (e *NotFoundError) Hint() string { return "list them with: microctl ps" }

// Resolve returns the services the targets name: every service of a stack
// named so, else the service of that name or ID.
func Resolve(ctx context.Context, api API, targets []string) ([]swarm.Service, error) {
	all, err := api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []swarm.Service
	seen := map[string]bool{}
	for _, t := range targets {
		found := false
		for _, s := range all {
			if s.Spec.Labels["com.docker.stack.namespace"] == t || s.Spec.Name == t || s.ID == t {
				found = true
				if !seen[s.ID] {
					seen[s.ID] = true
					out = append(out, s)
				}
			}
		}
		if !found {
			return nil, &NotFoundError{Name: t}
		}
	}
	slices.SortFunc(out, func(a, b swarm.Service) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}

// Stream writes the merged lines to emit until every task's log has been
// read (or, with Follow, until ctx ends: it returns nil then). An error
// from emit (a closed pipe) ends it with that error.
func Stream(ctx context.Context, api API, opts Options, emit func(Line) error) error {
	opts.defaults()
	if _, err := mswarm.RequireManager(ctx, api); err != nil {
		return err
	}
	services, err := Resolve(ctx, api, opts.Targets)
	if err != nil {
		return err
	}
	r := &reader{api: api, opts: opts, services: services, nodes: map[string]swarm.Node{},
		seen: map[string]bool{}, wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		r.wg.Wait()
	}()
	if err := r.discover(ctx, true); err != nil {
		return err
	}
	var poll <-chan time.Time
	if opts.Follow {
		t := time.NewTicker(opts.Poll)
		defer t.Stop()
		poll = t.C
	}
	for {
		r.mu.Lock()
		streams := slices.Clone(r.streams)
		r.mu.Unlock()
		// Take a head from every stream that has one ready.
		waiting := false
		var open []*stream
		for _, s := range streams {
			if s.head == nil && !s.ended {
				select {
				case l, ok := <-s.ch:
					if ok {
						s.head = &l
					} else {
						s.ended = true
					}
				default:
				}
			}
			if s.head == nil && !s.ended {
				waiting = true
			}
			if !s.ended || s.head != nil {
				open = append(open, s)
			}
		}
		r.mu.Lock()
		r.streams = open
		r.mu.Unlock()
		if len(open) == 0 && !opts.Follow {
			return nil
		}
		var first *stream
		for _, s := range open {
			if s.head != nil && (first == nil || s.head.Time.Before(first.head.Time)) {
				first = s
			}
		}
		// A line goes out when no other task can still have an earlier
		// one (every open task has a line waiting), or when it has waited
		// the window.
		var timer <-chan time.Time
		if first != nil {
			if !waiting || time.Since(first.head.arrived) >= opts.Window {
				l := *first.head
				first.head = nil
				if err := emit(l); err != nil {
					return err
				}
				continue
			}
			timer = time.After(opts.Window - time.Since(first.head.arrived))
		}
		select {
		case <-ctx.Done():
			if opts.Follow {
				return nil
			}
			return ctx.Err()
		case <-r.wake:
		case <-timer:
		case <-poll:
			if err := r.discover(ctx, false); err != nil && ctx.Err() == nil {
				// The task list is read again at the next tick.
				opts.OnNotice(Notice{Kind: NoticeUnreadable, Err: fmt.Errorf("list tasks: %w", err)})
			}
		}
	}
}

type reader struct {
	api      API
	opts     Options
	services []swarm.Service
	nodes    map[string]swarm.Node
	// ips maps an instance's address to its Consul instance ID.
	ips       map[string]string
	catalogAt time.Time
	seen      map[string]bool // task IDs already read or reported

	mu      sync.Mutex
	streams []*stream
	wake    chan struct{}
	wg      sync.WaitGroup
}

type stream struct {
	ch    chan Line
	head  *Line
	ended bool

	task   string
	cancel context.CancelFunc
	// finishedAt: when the task was first seen in a terminal state. The
	// engine keeps a followed stream of a finished task open forever, so
	// it is closed a grace period after (its last lines are in by then).
	finishedAt time.Time
}

// terminal: the task's container will write no more.
func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// discover reads the task lists and starts a reader for each task not yet
// seen. initial: the tasks there at the start, to which --tail and --since
// apply; later tasks are read from their beginning.
func (r *reader) discover(ctx context.Context, initial bool) error {
	var tasks []swarm.Task
	for _, s := range r.services {
		ts, err := r.api.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", s.ID))})
		if err != nil {
			return fmt.Errorf("list tasks of %s: %w", s.Spec.Name, err)
		}
		tasks = append(tasks, ts...)
	}
	r.closeFinished(tasks)
	var fresh []swarm.Task
	for _, t := range tasks {
		// A task that never got a container (pending, rejected) has no
		// logs; it is read once it has one.
		if r.seen[t.ID] || t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == "" {
			continue
		}
		fresh = append(fresh, t)
	}
	if len(fresh) == 0 {
		return nil
	}
	if err := r.refreshNodes(ctx, fresh); err != nil {
		return err
	}
	r.refreshInstances(ctx)
	slices.SortFunc(fresh, func(a, b swarm.Task) int { return a.CreatedAt.Compare(b.CreatedAt) })
	for _, t := range fresh {
		r.seen[t.ID] = true
		base := r.lineOf(t)
		node := r.nodes[t.NodeID]
		if node.Status.State != swarm.NodeStateReady {
			r.opts.OnNotice(Notice{Kind: NoticeUnreadable, Task: base,
				Err: fmt.Errorf("node %s is %s", base.Node, orUnknown(string(node.Status.State)))})
			continue
		}
		if !initial {
			r.opts.OnNotice(Notice{Kind: NoticeFollowing, Task: base})
		}
		lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: r.opts.Follow}
		if initial {
			lo.Since = r.opts.Since
			if r.opts.Tail >= 0 {
				lo.Tail = strconv.Itoa(r.opts.Tail)
			}
		}
		sctx, scancel := context.WithCancel(ctx)
		s := &stream{ch: make(chan Line, r.opts.Queue), task: t.ID, cancel: scancel}
		r.mu.Lock()
		r.streams = append(r.streams, s)
		r.mu.Unlock()
		tty := false
		for _, svc := range r.services {
			if svc.ID == t.ServiceID && svc.Spec.TaskTemplate.ContainerSpec != nil {
				tty = svc.Spec.TaskTemplate.ContainerSpec.TTY
			}
		}
		r.wg.Add(1)
		go r.read(sctx, t.ID, base, lo, tty, s)
	}
	return nil
}

// closeFinished ends the follow of tasks that finished more than two poll
// intervals ago, or that the engine no longer lists: without it, every
// restart of a crash-looping task would leave one open stream behind.
func (r *reader) closeFinished(tasks []swarm.Task) {
	if !r.opts.Follow {
		return
	}
	state := map[string]swarm.TaskState{}
	for _, t := range tasks {
		state[t.ID] = t.Status.State
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.streams {
		st, listed := state[s.task]
		switch {
		case !listed:
			s.cancel()
		case terminal(st) && s.finishedAt.IsZero():
			s.finishedAt = now
		case terminal(st) && now.Sub(s.finishedAt) > 2*r.opts.Poll:
			s.cancel()
		}
	}
}

// readers counts the task readers running in this process (tests check
// that a long follow does not accumulate them).
var readers atomic.Int64

func (r *reader) read(ctx context.Context, taskID string, base Line, lo container.LogsOptions, tty bool, s *stream) {
	defer r.wg.Done()
	readers.Add(1)
	defer readers.Add(-1)
	defer func() {
		close(s.ch)
		r.poke()
	}()
	// A log is a stream: the request timeout covers getting an answer,
	// not reading (or following) what the task wrote.
	rc, err := r.api.TaskLogs(boundhttp.Stream(ctx), taskID, lo)
	if err != nil {
		if ctx.Err() == nil {
			r.opts.OnNotice(Notice{Kind: NoticeUnreadable, Task: base, Err: err})
		}
		return
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	out := &lineWriter{r: r, ctx: ctx, s: s, base: base, stream: "stdout"}
	errw := &lineWriter{r: r, ctx: ctx, s: s, base: base, stream: "stderr"}
	if tty {
		_, err = io.Copy(out, rc)
	} else {
		_, err = stdcopy.StdCopy(out, errw, rc)
	}
	out.flush()
	errw.flush()
	if err != nil && ctx.Err() == nil && !errors.Is(err, errStopped) {
		r.opts.OnNotice(Notice{Kind: NoticeUnreadable, Task: base, Err: err})
	}
}

func (r *reader) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

var errStopped = errors.New("stopped")

// lineWriter cuts a task's output into lines. It holds at most one partial
// line of MaxLine bytes.
type lineWriter struct {
	r       *reader
	ctx     context.Context
	s       *stream
	base    Line
	stream  string
	partial []byte
	cut     bool // the current line has been cut at MaxLine
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := w.r.opts.MaxLine - len(w.partial); room < len(chunk) {
			w.partial = append(w.partial, chunk[:max(room, 0)]...)
			w.cut = true
		} else {
			w.partial = append(w.partial, chunk...)
		}
		if i < 0 {
			break
		}
		if err := w.send(); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) flush() {
	if len(w.partial) > 0 {
		_ = w.send()
	}
}

func (w *lineWriter) send() error {
	l := w.base
	l.Stream, l.Truncated = w.stream, w.cut
	raw := strings.TrimSuffix(string(w.partial), "\r")
	w.partial, w.cut = w.partial[:0], false
	// The engine puts an RFC 3339 timestamp and a space in front.
	if ts, rest, ok := strings.Cut(raw, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, raw = t, rest
		}
	}
	l.Text = raw
	if w.r.opts.Grep != nil && !w.r.opts.Grep.MatchString(l.Text) {
		return nil
	}
	l.arrived = time.Now()
	select {
	case w.s.ch <- l:
		w.r.poke()
		return nil
	case <-w.ctx.Done():
		return errStopped
	}
}

func (r *reader) refreshNodes(ctx context.Context, tasks []swarm.Task) error {
	for _, t := range tasks {
		if _, ok := r.nodes[t.NodeID]; !ok {
			nodes, err := r.api.NodeList(ctx, swarm.NodeListOptions{})
			if err != nil {
				return fmt.Errorf("list nodes: %w", err)
			}
			for _, n := range nodes {
				r.nodes[n.ID] = n
			}
			return nil
		}
	}
	return nil
}

// refreshInstances maps instance addresses to Consul instance IDs, at most
// once per poll interval. Consul being unreachable only costs the IDs.
func (r *reader) refreshInstances(ctx context.Context) {
	if r.opts.Catalog == nil || time.Since(r.catalogAt) < r.opts.Poll {
		return
	}
	r.catalogAt = time.Now()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cat, err := r.opts.Catalog.Catalog(cctx)
	if err != nil {
		r.opts.OnNotice(Notice{Kind: NoticeUnreadable, Err: fmt.Errorf("Consul instance IDs unavailable: %w", err)})
		r.opts.Catalog = nil // said once; the logs go on without IDs
		return
	}
	r.ips = map[string]string{}
	for _, in := range cat.Instances {
		if in.Address != "" {
			r.ips[in.Address] = in.ID
		}
	}
}

func (r *reader) lineOf(t swarm.Task) Line {
	l := Line{Task: t.ID, Slot: t.Slot, Node: t.NodeID}
	if n, ok := r.nodes[t.NodeID]; ok && n.Description.Hostname != "" {
		l.Node = n.Description.Hostname
	}
	for _, s := range r.services {
		if s.ID == t.ServiceID {
			l.Service, l.Stack = s.Spec.Name, s.Spec.Labels["com.docker.stack.namespace"]
		}
	}
	for _, na := range t.NetworksAttachments {
		for _, a := range na.Addresses {
			ip, _, err := net.ParseCIDR(a)
			if err != nil {
				continue
			}
			if id, ok := r.ips[ip.String()]; ok {
				l.Instance = id
			}
		}
	}
	return l
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
