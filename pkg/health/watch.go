package health

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// Source is what the watcher reads from Consul; *registry.Client is one.
type Source interface {
	Catalog(ctx context.Context) (*registry.Catalog, error)
	WatchChecks(ctx context.Context, index uint64, wait time.Duration) ([]registry.Check, registry.BlockingResult, error)
	WatchServices(ctx context.Context, index uint64, wait time.Duration) (registry.BlockingResult, error)
}

// Event types of `health watch`. Stable: they are the "event" field of
// `health watch -o json`.
const (
	EventRegistered   = "registered"
	EventDeregistered = "deregistered"
	EventTransition   = "transition"
	EventCheckAdded   = "check_added"
	EventCheckRemoved = "check_removed"
	EventFlapping     = "flapping"
	// EventReconnected: Consul answers again after failed requests, or its
	// index went backwards (an agent that restarted and lost its state).
	// The watcher has re-read everything; the events that follow it are
	// every difference from its last view. Output says which.
	EventReconnected = "reconnected"
)

// Event is one change seen while watching.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"event"`
	Service  string    `json:"service,omitempty"` // empty for a node check's events
	Instance string    `json:"instance,omitempty"`
	Node     string    `json:"node"`
	Address  string    `json:"address,omitempty"` // registered: host:port clients dial
	Version  string    `json:"version,omitempty"`
	Check    string    `json:"check,omitempty"` // check ID
	Kind     string    `json:"check_type,omitempty"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to,omitempty"`
	// Status is the instance's status after the event (for deregistered,
	// its last one).
	Status string `json:"status,omitempty"`
	Output string `json:"output,omitempty"`
	// PreviousFor is how long the check (for transition) or the instance
	// (for deregistered) had been in its previous state. When that state
	// began before the watch did, the real time is longer and
	// PreviousAtLeast is true: the time was measured from the watch's
	// start, since Consul records no time of change.
	PreviousFor     *Seconds `json:"previous_for_seconds,omitempty"`
	PreviousAtLeast bool     `json:"previous_for_at_least,omitempty"`
	// Flapping: transitions within the window.
	Transitions int      `json:"transitions,omitempty"`
	Window      *Seconds `json:"window_seconds,omitempty"`
	TTL         *string  `json:"ttl,omitempty"`
}

// Seconds is a duration in JSON as seconds with millisecond precision.
type Seconds float64

func secondsOf(d time.Duration) *Seconds {
	s := Seconds(float64(d.Milliseconds()) / 1000)
	return &s
}

// Duration converts back.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// WatchOptions configure a Watcher. Zero values take the defaults.
type WatchOptions struct {
	Services []string
	Defaults Defaults
	// Wait is the blocking query's wait (Consul's default and our default
	// is 5m; its maximum is 10m).
	Wait time.Duration
	// MinInterval is the least time between two requests of one blocking
	// loop: a blocking query that returns at once (an idempotent write, a
	// proxy that does not block, a Consul bug returning index 0) must not
	// become a busy loop.
	MinInterval time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed request; it
	// doubles per failure, with jitter, so that many watchers restarted
	// together do not retry together. BackoffMax defaults to 10 s: a
	// restarted agent is noticed within seconds, not a minute.
	BackoffMin, BackoffMax time.Duration
	// A check that changes state FlapTransitions times within FlapWindow
	// is reported as flapping.
	FlapTransitions int
	FlapWindow      time.Duration
	// OnError is told about each failed request and the wait before the
	// next; the watch goes on.
	OnError func(err error, retryIn time.Duration)
	// Ready, when set, is called once the initial read is done, with the
	// instances being watched.
	Ready func(instances []Instance)

	// For tests: the clock and the sleep.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o *WatchOptions) defaults() {
	if o.Wait <= 0 {
		o.Wait = 5 * time.Minute
	}
	if o.MinInterval <= 0 {
		o.MinInterval = 500 * time.Millisecond
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 10 * time.Second
	}
	if o.FlapTransitions <= 0 {
		o.FlapTransitions = 4
	}
	if o.FlapWindow <= 0 {
		o.FlapWindow = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.OnError == nil {
		o.OnError = func(error, time.Duration) {}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Watcher follows every change in the catalog's instances and checks.
type Watcher struct {
	src  Source
	opts WatchOptions
	// down is set by a blocking loop whose request failed, and cleared by
	// the first loop to succeed again, which asks for a full re-read: one
	// "reconnected" per outage, however many loops saw it.
	down atomic.Bool
	// resyncs counts the full re-reads ("reconnected") so far. A request
	// sent before the latest one that fails afterwards belongs to the
	// outage already reported (the agent dropped it when it went): it
	// must not open a second one.
	resyncs atomic.Int64
	// lastResync is when the latest full re-read was asked for (unix ns).
	// A restarting agent answers, then refuses for a while (no leader
	// yet), then answers for good: failures within resyncGrace of a
	// re-read belong to the outage it already reported. Their loops start
	// over from a non-blocking read, so no change is lost; only a second
	// "reconnected" and a second whole read are spared.
	lastResync atomic.Int64
}

// resyncGrace: see Watcher.lastResync.
const resyncGrace = 10 * time.Second

// NewWatcher returns a watcher reading from src.
func NewWatcher(src Source, opts WatchOptions) *Watcher {
	opts.defaults()
	return &Watcher{src: src, opts: opts}
}

// tracked is what the watcher remembers of one check or instance.
type tracked struct {
	status     string
	since      time.Time
	sinceKnown bool // false: the state began before the watch started
	flaps      []time.Time
	flagged    bool
}

// view is the watched state at one moment.
type view struct {
	instances   map[string]registry.ServiceInstance // by node/ID
	checks      map[string]registry.Check           // by node/checkID
	checksIndex uint64
	// own and onNode index checks by node/serviceID and by node.
	own, onNode map[string][]registry.Check
}

func (v *view) index() {
	v.own, v.onNode = map[string][]registry.Check{}, map[string][]registry.Check{}
	for _, c := range v.checks {
		if c.ServiceID == "" {
			v.onNode[c.Node] = append(v.onNode[c.Node], c)
		} else {
			k := c.Node + "/" + c.ServiceID
			v.own[k] = append(v.own[k], c)
		}
	}
	byID := func(a, b registry.Check) int { return cmp.Compare(a.CheckID, b.CheckID) }
	for _, cs := range v.own {
		slices.SortFunc(cs, byID)
	}
	for _, cs := range v.onNode {
		slices.SortFunc(cs, byID)
	}
}

type checksMsg struct {
	checks []registry.Check
	res    registry.BlockingResult
	reset  bool
}

// Run watches until ctx is done and returns nil then: stopping a watch is
// its normal end. It returns an error only when the initial read fails.
func (w *Watcher) Run(ctx context.Context, emit func(Event)) error {
	cat, err := w.src.Catalog(ctx)
	if err != nil {
		return err
	}
	if cat.Filtered.Any() && len(cat.Instances) == 0 && len(cat.Nodes) == 0 {
		if c, ok := w.src.(*registry.Client); ok {
			return registry.FilteredError(c.Addr, cat.Filtered)
		}
		return registry.FilteredError("", cat.Filtered)
	}
	start := w.opts.Now()
	cur := viewOf(cat)
	trk := map[string]*tracked{}
	for k, c := range cur.checks {
		trk["c:"+k] = &tracked{status: c.Status, since: start}
	}
	for k, in := range cur.instances {
		trk["i:"+k] = &tracked{status: w.instanceOf(in, cur).Status, since: start}
	}
	if w.opts.Ready != nil {
		var ins []Instance
		for _, in := range cur.instances {
			if w.wanted(in.Service) {
				ins = append(ins, w.instanceOf(in, cur))
			}
		}
		slices.SortFunc(ins, func(a, b Instance) int { return cmp.Compare(a.Service+a.ID, b.Service+b.ID) })
		w.opts.Ready(ins)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checksCh := make(chan checksMsg)
	servicesCh := make(chan registry.BlockingResult)
	resyncCh := make(chan string)
	resync := func(reason string) {
		select {
		case resyncCh <- reason:
		case <-ctx.Done():
		}
	}
	go w.loop(ctx, cat.ChecksIndex, resync, func(ctx context.Context, idx uint64) (uint64, func(bool), error) {
		checks, res, err := w.src.WatchChecks(ctx, idx, w.opts.Wait)
		return res.Index, func(reset bool) {
			select {
			case checksCh <- checksMsg{checks: checks, res: res, reset: reset}:
			case <-ctx.Done():
			}
		}, err
	})
	go w.loop(ctx, 0, resync, func(ctx context.Context, idx uint64) (uint64, func(bool), error) {
		res, err := w.src.WatchServices(ctx, idx, w.opts.Wait)
		return res.Index, func(bool) {
			select {
			case servicesCh <- res:
			case <-ctx.Done():
			}
		}, err
	})

	var retry <-chan time.Time
	var failures int
	// full: the next refresh replaces the whole view, checks included,
	// even when its index is lower than the one last seen (after a restart
	// the agent counts from scratch).
	full := false
	backwards := func(got uint64) string {
		return fmt.Sprintf("Consul's index went backwards (%d after %d): the agent restarted or its state was restored; the whole state was read again", got, cur.checksIndex)
	}
	refresh := func() {
		cat, err := w.src.Catalog(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := w.backoff(failures)
			failures++
			w.opts.OnError(err, d)
			retry = time.After(d)
			return
		}
		failures, retry = 0, nil
		next := viewOf(cat)
		if !full && cat.ChecksIndex < cur.checksIndex && cat.ChecksIndex > 0 {
			// Reads go to the leader, whose index never goes back: a
			// whole read older than the last checks seen means the agent
			// restarted or its state was restored, with no failed request
			// to tell. It is a resync like any other.
			w.resync()
			emit(Event{Time: w.opts.Now(), Type: EventReconnected, Output: backwards(cat.ChecksIndex)})
			full = true
		}
		if full {
			full = false
		} else if cat.ChecksIndex < cur.checksIndex {
			// The checks loop has seen newer checks than this read did:
			// keep them, take the instances.
			next.checks, next.checksIndex = cur.checks, cur.checksIndex
			next.index()
		}
		w.diff(cur, next, trk, emit)
		cur = next
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			refresh()
		case reason := <-resyncCh:
			full = true
			w.resync()
			emit(Event{Time: w.opts.Now(), Type: EventReconnected, Output: reason})
			refresh()
		case <-servicesCh:
			// Any registration or deregistration, with or without a check.
			refresh()
		case m := <-checksCh:
			if m.reset && m.res.Index < cur.checksIndex && m.res.Index > 0 {
				// The checks went back in time: a restarted agent. Say so
				// and read everything again rather than diff checks
				// against instances of the old agent.
				w.resync()
				emit(Event{Time: w.opts.Now(), Type: EventReconnected, Output: backwards(m.res.Index)})
				full = true
				refresh()
				continue
			}
			if m.res.Index < cur.checksIndex && !m.reset {
				continue // older than what a catalog read already gave
			}
			next := view{instances: cur.instances, checks: map[string]registry.Check{}, checksIndex: m.res.Index}
			members := false
			for _, c := range m.checks {
				next.checks[c.Key()] = c
				if c.ServiceID != "" {
					if _, ok := cur.instances[c.Node+"/"+c.ServiceID]; !ok {
						members = true
					}
				}
			}
			for k, c := range cur.checks {
				if _, ok := next.checks[k]; !ok && c.ServiceID != "" {
					members = true
				}
			}
			if members {
				// An instance came or went: read its address and Meta too.
				refresh()
				continue
			}
			next.index()
			w.diff(cur, next, trk, emit)
			cur = next
		}
	}
}

// resync records a full re-read that the index going backwards asked for.
// It also ends any outage a loop has opened: the re-read is the one
// "reconnected" of that restart. Without this, a loop whose request failed
// while the agent restarted reported a second "reconnected" when its retry
// succeeded after the re-read (seen in CI, TestWatchAcrossAgentRestart).
// A request sent after this that fails is a new outage (see loop).
func (w *Watcher) resync() {
	w.resyncs.Add(1)
	w.lastResync.Store(w.opts.Now().UnixNano())
	w.down.Store(false)
}

// inGrace reports whether a failure now belongs to the latest re-read's
// outage (see lastResync).
func (w *Watcher) inGrace() bool {
	at := w.lastResync.Load()
	return at != 0 && w.opts.Now().Sub(time.Unix(0, at)) < resyncGrace
}

// loop runs one blocking query after another. fetch returns the index the
// response carried and a function delivering the response.
//
// After failures (of any loop), the first loop to get an answer again asks
// for a full re-read (resync) instead of delivering: one per outage. An
// index that goes backwards with no failure seen is delivered as a reset,
// and the main loop makes it a resync.
func (w *Watcher) loop(ctx context.Context, index uint64, resync func(reason string),
	fetch func(context.Context, uint64) (uint64, func(reset bool), error)) {
	var last time.Time
	failures := 0
	first := index == 0
	for {
		if !last.IsZero() {
			if err := w.opts.Sleep(ctx, w.opts.MinInterval-w.opts.Now().Sub(last)); err != nil {
				return
			}
		}
		last = w.opts.Now()
		sentAfter := w.resyncs.Load()
		got, deliver, err := fetch(ctx, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d := w.backoff(failures)
			failures++
			if w.resyncs.Load() == sentAfter && !w.inGrace() {
				w.down.Store(true)
			}
			// The next request must not block: an agent that restarted
			// counts from a lower index, and a blocking query with the
			// old one would wait its whole wait (minutes) before
			// returning anything.
			index = 0
			w.opts.OnError(err, d)
			if w.opts.Sleep(ctx, d) != nil {
				return
			}
			continue
		}
		failures = 0
		// Any loop's failure counts: the loop that answers first after an
		// outage may be one whose request was not in flight when the agent
		// went, and so never failed itself.
		if w.down.CompareAndSwap(true, false) {
			if got < index {
				index = 0 // Consul's rule: a backwards index starts over
			} else {
				index = max(got, 1)
			}
			first = false
			resync("Consul answers again; the whole state was read again")
			continue
		}
		switch {
		case got == 0:
			// An index must be positive; 0 would make every next request
			// return at once. Consul's documentation says to use 1.
			deliver(index > 1)
			index = 1
		case got < index:
			// The index went backwards (a snapshot restore, a new leader
			// with a different state): start over from a non-blocking read.
			deliver(true)
			index = 0
		case got != index || first:
			deliver(false)
			index = got
		}
		first = false
	}
}

// backoff is the wait after n consecutive failures: doubling from
// BackoffMin up to BackoffMax, then a random point in its upper half
// ("equal jitter"), so it never drops to nothing and never syncs up
// across watchers.
func (w *Watcher) backoff(n int) time.Duration {
	d := w.opts.BackoffMin
	for i := 0; i < n && d < w.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, w.opts.BackoffMax)
	return d/2 + rand.N(d/2+1)
}

func (w *Watcher) wanted(service string) bool {
	return len(w.opts.Services) == 0 || slices.Contains(w.opts.Services, service)
}

func viewOf(cat *registry.Catalog) view {
	v := view{instances: map[string]registry.ServiceInstance{}, checks: map[string]registry.Check{}, checksIndex: cat.ChecksIndex}
	for _, in := range cat.Instances {
		v.instances[in.Key()] = in
		for _, c := range in.Checks {
			v.checks[c.Key()] = c
		}
	}
	for _, n := range cat.Nodes {
		for _, c := range n.Checks {
			v.checks[c.Key()] = c
		}
	}
	v.index()
	return v
}

// instanceOf builds an Instance from v: its own checks come from v's
// checks (which may be newer than the instance entry), its node's too.
func (w *Watcher) instanceOf(raw registry.ServiceInstance, v view) Instance {
	raw.Checks = v.own[raw.Key()]
	return NewInstance(raw, v.onNode[raw.Node], w.opts.Defaults)
}

// diff emits the events that turn old into next, in a stable order.
func (w *Watcher) diff(old, next view, trk map[string]*tracked, emit func(Event)) {
	now := w.opts.Now()
	var events, flaps []Event
	watchedNodes := map[string]bool{}
	for _, v := range []view{old, next} {
		for _, in := range v.instances {
			if w.wanted(in.Service) {
				watchedNodes[in.Node] = true
			}
		}
	}
	// Instances that came.
	for k, raw := range next.instances {
		if _, ok := old.instances[k]; ok || !w.wanted(raw.Service) {
			continue
		}
		in := w.instanceOf(raw, next)
		trk["i:"+k] = &tracked{status: in.Status, since: now, sinceKnown: true}
		for _, c := range in.Checks {
			if c.Scope == "service" {
				trk["c:"+c.Key()] = &tracked{status: c.Status, since: now, sinceKnown: true}
			}
		}
		events = append(events, Event{Time: now, Type: EventRegistered, Service: in.Service, Instance: in.ID, Node: in.Node,
			Address: hostPort(in.Address, in.Port), Version: in.Version, Status: in.Status, TTL: in.TTLText})
	}
	// Instances that went.
	for k, raw := range old.instances {
		if _, ok := next.instances[k]; ok || !w.wanted(raw.Service) {
			continue
		}
		e := Event{Time: now, Type: EventDeregistered, Service: raw.Service, Instance: raw.ID, Node: raw.Node}
		if t := trk["i:"+k]; t != nil {
			e.Status = t.status
			e.PreviousFor, e.PreviousAtLeast = secondsOf(now.Sub(t.since)), !t.sinceKnown
		}
		delete(trk, "i:"+k)
		for ck, c := range old.checks {
			if c.Node == raw.Node && c.ServiceID == raw.ID {
				delete(trk, "c:"+ck)
			}
		}
		events = append(events, e)
	}
	// Checks that changed, came or went on instances (or nodes) that stay.
	owner := func(c registry.Check) (registry.ServiceInstance, bool, bool) {
		if c.ServiceID == "" {
			return registry.ServiceInstance{}, watchedNodes[c.Node], true
		}
		inOld, okOld := old.instances[c.Node+"/"+c.ServiceID]
		_, okNew := next.instances[c.Node+"/"+c.ServiceID]
		if !okOld || !okNew {
			return inOld, false, false // registration or deregistration covers it
		}
		return inOld, w.wanted(inOld.Service), true
	}
	for k, c := range next.checks {
		in, want, stays := owner(c)
		if !stays || !want {
			continue
		}
		e := Event{Time: now, Service: in.Service, Instance: in.ID, Node: c.Node, Check: c.CheckID, Kind: KindOf(c), Output: c.Output}
		prev, existed := old.checks[k]
		t := trk["c:"+k]
		switch {
		case !existed:
			e.Type, e.To = EventCheckAdded, c.Status
			trk["c:"+k] = &tracked{status: c.Status, since: now, sinceKnown: true}
		case prev.Status != c.Status:
			e.Type, e.From, e.To = EventTransition, prev.Status, c.Status
			if t == nil {
				t = &tracked{since: now}
				trk["c:"+k] = t
			}
			e.PreviousFor, e.PreviousAtLeast = secondsOf(now.Sub(t.since)), !t.sinceKnown
			t.status, t.since, t.sinceKnown = c.Status, now, true
			if f := w.flap(t, now); f != nil {
				f.Service, f.Instance, f.Node, f.Check, f.Kind = e.Service, e.Instance, e.Node, e.Check, e.Kind
				flaps = append(flaps, *f)
			}
		default:
			continue
		}
		if in.ID != "" {
			e.Status = w.instanceOf(next.instances[c.Node+"/"+c.ServiceID], next).Status
		}
		events = append(events, e)
	}
	for k, c := range old.checks {
		if _, ok := next.checks[k]; ok {
			continue
		}
		in, want, stays := owner(c)
		if !stays || !want {
			delete(trk, "c:"+k)
			continue
		}
		delete(trk, "c:"+k)
		events = append(events, Event{Time: now, Type: EventCheckRemoved, Service: in.Service, Instance: in.ID, Node: c.Node,
			Check: c.CheckID, Kind: KindOf(c), From: c.Status})
	}
	// Keep each instance's time in its current status.
	for k, raw := range next.instances {
		if _, ok := old.instances[k]; !ok {
			continue
		}
		st := w.instanceOf(raw, next).Status
		if t := trk["i:"+k]; t != nil && t.status != st {
			t.status, t.since, t.sinceKnown = st, now, true
		}
	}
	events = append(events, flaps...)
	slices.SortStableFunc(events, func(a, b Event) int {
		return cmp.Or(cmp.Compare(order(a.Type), order(b.Type)), cmp.Compare(a.Service, b.Service),
			cmp.Compare(a.Node, b.Node), cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Check, b.Check))
	})
	for _, e := range events {
		emit(e)
	}
}

// order puts a flapping report right after the transitions that caused it.
func order(t string) int {
	return slices.Index([]string{EventDeregistered, EventRegistered, EventCheckRemoved, EventCheckAdded, EventTransition, EventFlapping}, t)
}

// flap records a transition and returns a flapping event when the check
// has now changed FlapTransitions times within FlapWindow. It reports once
// per episode: again only after the count has dropped below the threshold.
func (w *Watcher) flap(t *tracked, now time.Time) *Event {
	t.flaps = append(t.flaps, now)
	cut := now.Add(-w.opts.FlapWindow)
	i := 0
	for i < len(t.flaps) && !t.flaps[i].After(cut) {
		i++
	}
	t.flaps = t.flaps[i:]
	if len(t.flaps) < w.opts.FlapTransitions {
		t.flagged = false
		return nil
	}
	if t.flagged {
		return nil
	}
	t.flagged = true
	return &Event{Time: now, Type: EventFlapping, Transitions: len(t.flaps), Window: secondsOf(w.opts.FlapWindow), To: t.status}
}

func hostPort(addr string, port int) string {
	if port == 0 {
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}
