package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/microctl/microctl/internal/neterr"
	mnet "github.com/microctl/microctl/pkg/net"
)

// ConnectError means no connection to the target could be made at all.
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot connect to %s: %s", e.Addr, neterr.Reason(e.Err))
}
func (e *ConnectError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *ConnectError) Hint() string {
	return "is the target running? check the URL, or run `microctl bench` without a URL to try the built-in target"
}

// Progress is a snapshot of a running benchmark.
type Progress struct {
	Elapsed        time.Duration
	Requests       uint64  // responses so far
	Errors         uint64  // failures so far
	BytesRead      uint64  //
	RequestsPerSec float64 // over the last interval
	// P50US and P99US are the latency percentiles so far (corrected with
	// -R), in µs; 0 before the first response.
	P50US, P99US float64
}

// runner is one benchmark run.
type runner struct {
	o     Options
	eng   *mnet.Engine
	eps   []*endpoint
	addrs map[string]*net.TCPAddr
	loops []*loopRun
	start int64 // on the loops' clock

	conns         int32        // connections in the plan
	neverOpened   atomic.Int32 // connections whose first connect failed
	everConnected atomic.Bool
	pending       atomic.Int32 // loops still running
	done          chan struct{}
	abortOnce     sync.Once
	abortErr      error

	sloBroken chan string // --slo-abort: why the run stops

	tlsBase   *tls.Config
	tlsByHost map[string]*tls.Config
}

// Run benchmarks the target described by opts and returns what it
// measured. If ctx is cancelled the run stops early: Run returns the
// result so far (Interrupted set) together with ctx's error.
func Run(ctx context.Context, opts ...Option) (*Result, error) {
	o := newOptions(opts...)
	if err := o.Validate(); err != nil {
		return nil, &ConfigError{Err: err}
	}
	r := &runner{o: o, addrs: map[string]*net.TCPAddr{}, done: make(chan struct{})}
	if err := r.endpoints(); err != nil {
		return nil, err
	}
	eng, err := mnet.New(r,
		mnet.WithLoops(o.Loops),
		mnet.WithEngine(o.Engine),
		mnet.WithDialTimeout(o.Timeout),
		mnet.WithTimerSlack(paceSlack),
	)
	if err != nil {
		return nil, err
	}
	r.eng = eng
	r.plan()
	var watch *sloWatch
	if o.SLOAbort && len(o.SLOs) > 0 {
		var above []int64
		watch, above = newSLOWatch(o.SLOs, r.planned())
		for _, lr := range r.loops {
			lr.st.live = newLiveSLO(above)
		}
		r.sloBroken = make(chan string, 1)
	}
	eng.Start()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		eng.Stop(sctx)
	}()

	wall := time.Now()
	r.start = int64(eng.Loops()[0].Now())
	for _, lr := range r.loops {
		if lr.st.tl != nil {
			lr.st.tl.start = r.start
		}
	}
	r.pending.Store(int32(len(r.loops)))
	for _, lr := range r.loops {
		lr.l.Trigger(lr.begin)
	}

	var progressDone chan struct{}
	if o.Progress != nil {
		progressDone = make(chan struct{})
		go r.report(wall, progressDone)
	}

	watchDone := make(chan struct{})
	if watch != nil {
		go r.watchSLOs(watch, watchDone)
	}
	interrupted := false
	sloAbort := ""
	stopAll := func() {
		for _, lr := range r.loops {
			lr.l.Trigger(lr.stop)
		}
		<-r.done
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		interrupted = true
		stopAll()
	case sloAbort = <-r.sloBroken:
		stopAll()
	}
	close(watchDone)
	if progressDone != nil {
		close(progressDone)
	}
	if r.abortErr != nil {
		return nil, r.abortErr
	}
	res := r.result()
	res.Interrupted = interrupted
	res.SLOAbort = sloAbort
	for _, s := range o.SLOs {
		res.SLO = append(res.SLO, s.Evaluate(res))
	}
	if interrupted {
		return res, ctx.Err()
	}
	return res, nil
}

// ConfigError is a setting that cannot work; the caller's mistake.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// endpoints builds the request bytes for each address.
func (r *runner) endpoints() error {
	o := &r.o
	if len(o.TargetRequests) > 0 {
		return r.targetEndpoints()
	}
	var tgt *Target
	path := "/"
	switch {
	case strings.HasPrefix(o.URL, "/"):
		// A path alone, for Targets: each is its own Host.
		if len(o.Targets) == 0 {
			return &ConfigError{Err: fmt.Errorf("URL %q has no host", o.URL)}
		}
		path = o.URL
	case o.URL != "":
		var err error
		if tgt, err = ParseURL(o.URL); err != nil {
			return &ConfigError{Err: err}
		}
	}
	addrs := o.Targets
	if len(addrs) == 0 {
		addrs = []string{tgt.HostPort}
	}
	for _, a := range addrs {
		ta, err := net.ResolveTCPAddr("tcp", a)
		if err != nil {
			return &ConnectError{Addr: a, Err: err}
		}
		r.addrs[a] = ta
		ep := &endpoint{name: a, head: o.Method == "HEAD" && !o.TCP}
		if tgt != nil && tgt.TLS && !o.TCP {
			ep.tls = r.tlsConfig(tgt.URL.Hostname())
		}
		switch {
		case o.TCP:
			ep.req = o.Body
		case tgt != nil:
			ep.req = buildRequest(o.Method, tgt.Host, tgt.Path, o.Headers, o.Body)
		default:
			ep.req = buildRequest(o.Method, a, path, o.Headers, o.Body)
		}
		ep.batch = bytes.Repeat(ep.req, o.Pipeline)
		if o.HTTP2 {
			scheme, host, p := "http", a, path
			if tgt != nil {
				host, p = tgt.Host, tgt.Path
				if tgt.TLS {
					scheme = "https"
				}
			}
			ep.h2 = newH2Req(o.Method, scheme, host, p, o.Headers, o.Body)
		}
		r.eps = append(r.eps, ep)
	}
	return nil
}

// targetEndpoints builds, for --targets, the endpoints and the requests
// each sends: with service addresses, every request (a path) to every
// address, each its own Host; otherwise each request to its URL's address.
func (r *runner) targetEndpoints() error {
	o := &r.o
	eps := map[string]*endpoint{}
	add := func(addr string, tls bool, host string) (*endpoint, error) {
		if ep, ok := eps[addr]; ok {
			return ep, nil
		}
		ta, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			return nil, &ConnectError{Addr: addr, Err: err}
		}
		r.addrs[addr] = ta
		ep := &endpoint{name: addr}
		if tls {
			ep.tls = r.tlsConfig(host)
		}
		eps[addr] = ep
		r.eps = append(r.eps, ep)
		return ep, nil
	}
	for _, a := range o.Targets {
		if _, err := add(a, false, ""); err != nil {
			return err
		}
	}
	for i, tr := range o.TargetRequests {
		headers := mergeHeaders(o.Headers, tr.Headers)
		body := tr.Body
		if tr.BodyFile == "" {
			body = o.Body
		}
		head := tr.Method == "HEAD"
		switch {
		case len(o.Targets) > 0:
			path := tr.URL
			if !strings.HasPrefix(path, "/") {
				t, err := ParseURL(tr.URL)
				if err != nil {
					return &ConfigError{Err: err}
				}
				path = t.Path
			}
			for _, a := range o.Targets {
				ep := eps[a]
				ep.treqs = append(ep.treqs, treq{idx: int32(i), req: buildRequest(tr.Method, a, path, headers, body), head: head})
			}
		default:
			if strings.HasPrefix(tr.URL, "/") {
				return &ConfigError{Err: fmt.Errorf("target %s %s is a path: give a full URL, or --service NAME", tr.Method, RedactURL(tr.URL))}
			}
			t, err := ParseURL(tr.URL)
			if err != nil {
				return &ConfigError{Err: err}
			}
			ep, err := add(t.HostPort, t.TLS, t.URL.Hostname())
			if err != nil {
				return err
			}
			ep.treqs = append(ep.treqs, treq{idx: int32(i), req: buildRequest(tr.Method, t.Host, t.Path, headers, body), head: head})
		}
	}
	return nil
}

// tlsConfig is the client configuration for one server name.
func (r *runner) tlsConfig(host string) *tls.Config {
	o := &r.o
	if r.tlsBase == nil {
		r.tlsBase = &tls.Config{}
		if o.TLS != nil {
			r.tlsBase = o.TLS.Clone()
		}
		if r.tlsBase.ClientSessionCache == nil {
			r.tlsBase.ClientSessionCache = tls.NewLRUClientSessionCache(max(64, 2*o.Connections))
		}
		if r.tlsBase.NextProtos == nil {
			r.tlsBase.NextProtos = []string{"http/1.1"}
			if o.HTTP2 {
				// http/1.1 too: a server without h2 then picks it, and
				// the run says plainly that it does not speak HTTP/2,
				// instead of failing on "no application protocol".
				r.tlsBase.NextProtos = []string{"h2", "http/1.1"}
			}
		}
		if r.tlsBase.MinVersion == 0 {
			r.tlsBase.MinVersion = tls.VersionTLS12
		}
	}
	if r.tlsBase.ServerName != "" {
		return r.tlsBase
	}
	if r.tlsByHost == nil {
		r.tlsByHost = map[string]*tls.Config{}
	}
	if c, ok := r.tlsByHost[host]; ok {
		return c
	}
	c := r.tlsBase.Clone()
	c.ServerName = host
	r.tlsByHost[host] = c
	return c
}

// mergeHeaders is the global headers (-H) with a target's own: a target's
// header replaces a global one of the same name.
func mergeHeaders(global, own []Header) []Header {
	out := make([]Header, 0, len(global)+len(own))
	for _, g := range global {
		replaced := false
		for _, h := range own {
			if strings.EqualFold(g.Name, h.Name) {
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, g)
		}
	}
	return append(out, own...)
}

// plan deals the connections to the loops and the endpoints (round-robin)
// and the request quota to the connections.
func (r *runner) plan() {
	o := &r.o
	loops := r.eng.Loops()
	for i, l := range loops {
		lr := &loopRun{r: r, idx: i, l: l, st: newLoopStats(o.Rate > 0)}
		if r.tlsBase != nil {
			lr.plain = make([]byte, 32<<10)
		}
		if n := len(o.TargetRequests); n > 0 {
			lr.st.byTarget = make([]targetStats, n)
			for j := range lr.st.byTarget {
				lr.st.byTarget[j] = targetStats{latency: newHistogram(), status: map[int]uint64{}}
			}
			if o.RandomTargets {
				lr.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			}
		}
		r.loops = append(r.loops, lr)
	}
	for i := 0; i < o.Connections; i++ {
		// Loops take connections in turn, and so do endpoints, but one
		// step slower: with 2 loops and 2 endpoints each loop talks to
		// both, so no loop is left with only an unreachable one.
		lr := r.loops[i%len(r.loops)]
		cs := &connState{lr: lr, ep: r.eps[(i/len(r.loops)+i%len(r.loops))%len(r.eps)], quota: -1}
		if n := len(cs.ep.treqs); n > 0 {
			cs.next = i % n // connections start on different targets
		}
		share := int64(-1)
		if o.Requests > 0 {
			share = o.Requests / int64(o.Connections)
			if int64(i) < o.Requests%int64(o.Connections) {
				share++
			}
		}
		if o.Rate > 0 {
			// The loop's schedule carries the quota; any of its
			// connections may send any of its requests.
			if lr.pace.quota == 0 && len(lr.conns) == 0 {
				lr.pace.quota = -1
			}
			if share >= 0 {
				lr.pace.quota = max(lr.pace.quota, 0) + share
			}
		} else {
			if share == 0 {
				continue // fewer requests than connections
			}
			cs.quota = share
		}
		lr.conns = append(lr.conns, cs)
		r.conns++
	}
}

// begin runs on the loop: dial, and set the deadline, the timeout sweep
// and the pacers.
func (lr *loopRun) begin() {
	o := &lr.r.o
	if len(lr.conns) == 0 {
		lr.stop()
		return
	}
	lr.active = len(lr.conns)
	if o.Duration > 0 {
		lr.timers = append(lr.timers, lr.l.AfterFunc(time.Duration(lr.r.start)+o.Duration-lr.l.Now(), lr.stop))
	}
	every := min(max(o.Timeout/10, time.Millisecond), 100*time.Millisecond)
	var sweep *mnet.Timer
	sweep = lr.l.AfterFunc(every, func() {
		lr.sweep()
		if !lr.stopping {
			sweep.Reset(every)
		}
	})
	lr.timers = append(lr.timers, sweep)
	if o.Rate > 0 {
		if lr.pace.quota == 0 {
			lr.stop() // this loop's share of -n is nothing
			return
		}
		lr.startPacer()
	}
	for _, cs := range lr.conns {
		lr.dial(cs)
	}
}

func (r *runner) loopDone() {
	if r.pending.Add(-1) == 0 {
		close(r.done)
	}
}

// abort ends the run with err (called on a loop).
func (r *runner) abort(err error) {
	r.abortOnce.Do(func() {
		r.abortErr = err
		for _, lr := range r.loops {
			lr.l.Trigger(lr.stop)
		}
	})
}

// report sends progress snapshots until done.
func (r *runner) report(wall time.Time, done chan struct{}) {
	t := time.NewTicker(r.o.ProgressInterval)
	defer t.Stop()
	var last uint64
	lastT := wall
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			var p Progress
			for _, lr := range r.loops {
				p.Requests += lr.st.responses.Load()
				p.Errors += lr.st.errCount.Load()
				p.BytesRead += lr.st.bytesRead.Load()
			}
			if h := r.snapshot(done); h != nil && h.TotalCount() > 0 {
				p.P50US = float64(h.ValueAtQuantile(50))
				p.P99US = float64(h.ValueAtQuantile(99))
			}
			p.Elapsed = now.Sub(wall)
			if dt := now.Sub(lastT).Seconds(); dt > 0 {
				p.RequestsPerSec = float64(p.Requests-last) / dt
			}
			last, lastT = p.Requests, now
			r.o.Progress(p)
		}
	}
}

// planned is how many requests the run will attempt in all, when known
// in advance: -n, or with -R and -d the schedule's total; 0 otherwise.
func (r *runner) planned() float64 {
	o := &r.o
	switch {
	case o.Requests > 0:
		return float64(o.Requests)
	case o.Rate > 0 && o.Duration > 0:
		return o.Rate * o.Duration.Seconds()
	}
	return 0
}

// watchSLOs checks the live counts every few milliseconds and reports the
// first limit that can no longer be met.
func (r *runner) watchSLOs(w *sloWatch, done chan struct{}) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	c := liveCounts{over: make([]uint64, len(r.loops[0].st.live.over))}
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		c.responses, c.errors, c.non2xx, c.maxUS = 0, 0, 0, 0
		clear(c.over)
		for _, lr := range r.loops {
			st := lr.st
			c.responses += st.responses.Load()
			c.errors += st.errCount.Load()
			c.non2xx += st.live.non2xx.Load()
			c.maxUS = max(c.maxUS, st.live.maxUS.Load())
			for i := range st.live.over {
				c.over[i] += st.live.over[i].Load()
			}
		}
		if s, why, ok := w.broken(c); ok {
			r.sloBroken <- fmt.Sprintf("%s can no longer be met: %s", s.Expr, why)
			return
		}
	}
}

// snapshot merges the loops' latency histograms so far. Each loop copies
// its own on the loop (a Trigger), once per progress interval; nil if the
// run ends meanwhile.
func (r *runner) snapshot(done chan struct{}) *hdrhistogram.Histogram {
	ch := make(chan *hdrhistogram.Histogram, len(r.loops))
	for _, lr := range r.loops {
		lr.l.Trigger(func() {
			h := newHistogram()
			h.Merge(lr.st.latency)
			ch <- h
		})
	}
	all := newHistogram()
	for range r.loops {
		select {
		case h := <-ch:
			all.Merge(h)
		case <-done:
			return nil
		case <-r.done:
			return nil
		}
	}
	return all
}
