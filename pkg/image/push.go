// Package image copies images from one Docker Engine to others without a
// registry: the source engine's `docker save` stream is piped into each
// target's `docker load`, targets in parallel. Swarm nodes pull the images
// of their tasks from a registry; without one, a task placed on a node that
// lacks the image never starts (moby#26852, moby#32683), and this is how
// the image gets there.
//
// The package never prints: it reports through an Event callback, and
// returns one Result per target for the command to render.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"golang.org/x/sync/errgroup"

	"github.com/microctl/microctl/internal/boundhttp"
)

// Engine is what a push needs of a Docker Engine (client.APIClient has it).
type Engine interface {
	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageSave(ctx context.Context, refs []string, opts ...client.ImageSaveOption) (io.ReadCloser, error)
	ImageLoad(ctx context.Context, r io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error)
	ImageTag(ctx context.Context, source, target string) error
}

// Target is one engine to push to.
type Target struct {
	Name   string // what the report calls it: a node's hostname, or the URL
	URL    string // the engine's address, for the report
	Engine Engine
}

// Status of one image on one target. Stable: `image push -o json` values.
type Status string

const (
	StatusPresent Status = "present" // the target already had the same image ID under that name
	StatusTagged  Status = "tagged"  // the target had the image ID under another name: tagged, nothing sent
	StatusSent    Status = "sent"    // saved from the source and loaded on the target, ID checked after
	StatusFailed  Status = "failed"
)

// ImageResult is what happened to one image on one target.
type ImageResult struct {
	Ref    string `json:"image"`
	ID     string `json:"id"`
	Status Status `json:"status"`
}

// Result is what happened on one target.
type Result struct {
	Target  string        `json:"target"`
	URL     string        `json:"url"`
	Images  []ImageResult `json:"images"`
	Bytes   int64         `json:"bytes_sent"`
	Seconds float64       `json:"seconds"`
	Err     error         `json:"-"`
	Error   string        `json:"error,omitempty"`
}

// EventKind says what an Event reports.
type EventKind int

const (
	EventChecked  EventKind = iota // the target was compared; Images lists what must be sent
	EventProgress                  // Bytes of the archive have gone to the target so far
	EventDone                      // the target is finished; Result is set
)

// Event is progress on one target, for a progress display.
type Event struct {
	Kind   EventKind
	Target string
	Images []string // EventChecked: the refs to send (empty: nothing to send)
	Bytes  int64
	Result *Result
}

// Options configure Push.
type Options struct {
	// Progress receives events from every target's goroutine; calls are
	// serialised.
	Progress func(Event)
	// CallTimeout bounds each inspect and tag request. Default 30s.
	CallTimeout time.Duration
	// Stall cancels a transfer when neither a byte of the archive went out
	// nor a message came back from the target for this long: a transfer
	// of a large image over ssh may rightly take minutes, a stuck one must
	// not hang the push. Default 2m.
	Stall time.Duration
	// Parallel is how many targets are served at once. Default 4.
	Parallel int
	// ProgressEvery is the minimum pause between two progress events of a
	// target. Default 200ms.
	ProgressEvery time.Duration
}

// Option sets an option.
type Option func(*Options)

// WithProgress sets the event callback.
func WithProgress(f func(Event)) Option { return func(o *Options) { o.Progress = f } }

// WithCallTimeout bounds each inspect and tag request.
func WithCallTimeout(d time.Duration) Option { return func(o *Options) { o.CallTimeout = d } }

// WithStall sets how long a transfer may go without progress.
func WithStall(d time.Duration) Option { return func(o *Options) { o.Stall = d } }

// WithParallel sets how many targets are served at once.
func WithParallel(n int) Option { return func(o *Options) { o.Parallel = n } }

func defaults() Options {
	return Options{CallTimeout: 30 * time.Second, Stall: 2 * time.Minute, Parallel: 4, ProgressEvery: 200 * time.Millisecond}
}

// ErrPartial is returned (wrapped) when some target failed; the Results
// say which and why.
var ErrPartial = errors.New("image push failed on some targets")

// Source is an image as the source engine has it.
type Source struct {
	Ref string
	ID  string
}

// Resolve inspects refs on the source engine. A ref the source does not
// have is an error naming it: nothing can be pushed from there.
func Resolve(ctx context.Context, src Engine, refs []string, callTimeout time.Duration) ([]Source, error) {
	if callTimeout <= 0 {
		callTimeout = defaults().CallTimeout
	}
	var out []Source
	seen := map[string]bool{}
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		ins, err := src.ImageInspect(cctx, ref)
		cancel()
		if err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("image %s is not on the source engine: build or pull it there first", ref)
			}
			return nil, fmt.Errorf("inspect %s on the source engine: %w", ref, err)
		}
		out = append(out, Source{Ref: ref, ID: ins.ID})
	}
	return out, nil
}

// Push copies images (resolved on src) to every target that does not hold
// them yet. Targets are independent: one failing does not stop the
// others; the error is then ErrPartial (wrapped, with each target's cause
// joined) and every target's Result is returned all the same.
func Push(ctx context.Context, src Engine, images []Source, targets []Target, opts ...Option) ([]Result, error) {
	o := defaults()
	for _, f := range opts {
		f(&o)
	}
	var mu sync.Mutex
	emit := func(e Event) {
		if o.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		o.Progress(e)
	}
	results := make([]Result, len(targets))
	var g errgroup.Group // not WithContext: a failed target must not cancel the others
	g.SetLimit(max(1, o.Parallel))
	for i, t := range targets {
		g.Go(func() error {
			start := time.Now()
			r := pushOne(ctx, src, images, t, o, emit)
			r.Seconds = time.Since(start).Seconds()
			if r.Err != nil {
				r.Error = r.Err.Error()
			}
			results[i] = r
			emit(Event{Kind: EventDone, Target: t.Name, Bytes: r.Bytes, Result: &results[i]})
			return nil
		})
	}
	_ = g.Wait()
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Target, r.Err))
		}
	}
	if len(errs) > 0 {
		return results, fmt.Errorf("%w: %w", ErrPartial, errors.Join(errs...))
	}
	return results, nil
}

func pushOne(ctx context.Context, src Engine, images []Source, t Target, o Options, emit func(Event)) Result {
	r := Result{Target: t.Name, URL: t.URL}
	var send []Source
	for i, im := range images {
		st, err := check(ctx, t.Engine, im, o.CallTimeout)
		if err != nil {
			// The first failure says it: an engine that cannot be read
			// for one image cannot be for the next.
			r.Err = err
			for _, im := range images[i:] {
				r.Images = append(r.Images, ImageResult{Ref: im.Ref, ID: im.ID, Status: StatusFailed})
			}
			break
		}
		if st == "" {
			send = append(send, im)
			continue
		}
		r.Images = append(r.Images, ImageResult{Ref: im.Ref, ID: im.ID, Status: st})
	}
	if r.Err != nil {
		for _, im := range send {
			r.Images = append(r.Images, ImageResult{Ref: im.Ref, ID: im.ID, Status: StatusFailed})
		}
		return r
	}
	refs := make([]string, len(send))
	for i, im := range send {
		refs[i] = im.Ref
	}
	emit(Event{Kind: EventChecked, Target: t.Name, Images: refs})
	if len(send) == 0 {
		return r
	}
	n, err := transfer(ctx, src, t, refs, o, emit)
	r.Bytes = n
	if err == nil {
		err = verify(ctx, t.Engine, send, o.CallTimeout)
	}
	st := StatusSent
	if err != nil {
		r.Err, st = err, StatusFailed
	}
	for _, im := range send {
		r.Images = append(r.Images, ImageResult{Ref: im.Ref, ID: im.ID, Status: st})
	}
	return r
}

// check returns present or tagged when nothing needs sending, "" when the
// image must be sent.
func check(ctx context.Context, e Engine, im Source, d time.Duration) (Status, error) {
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ins, err := e.ImageInspect(cctx, im.Ref)
	switch {
	case err == nil && ins.ID == im.ID:
		return StatusPresent, nil
	case err != nil && !cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("inspect %s: %w", im.Ref, err)
	}
	if isIDRef(im.Ref, im.ID) {
		return "", nil // asked for by ID and not there: nothing to tag
	}
	// The same content under another name (or the name moved on): a tag
	// is all it takes, no byte has to travel.
	if _, err := e.ImageInspect(cctx, im.ID); err == nil {
		if err := e.ImageTag(cctx, im.ID, im.Ref); err != nil {
			return "", fmt.Errorf("tag %s as %s: %w", shortID(im.ID), im.Ref, err)
		}
		return StatusTagged, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("inspect %s: %w", shortID(im.ID), err)
	}
	return "", nil
}

// verify observes the result of a load: each name on the target must now
// be the source's image ID.
func verify(ctx context.Context, e Engine, sent []Source, d time.Duration) error {
	for _, im := range sent {
		cctx, cancel := context.WithTimeout(ctx, d)
		ins, err := e.ImageInspect(cctx, im.Ref)
		cancel()
		if err != nil {
			return fmt.Errorf("after the load, inspect %s: %w", im.Ref, err)
		}
		if ins.ID != im.ID {
			return fmt.Errorf("after the load, %s is %s on the target, not %s", im.Ref, shortID(ins.ID), shortID(im.ID))
		}
	}
	return nil
}

// transfer streams src's save of refs into the target's load, cancelled
// when it makes no progress for o.Stall.
func transfer(ctx context.Context, src Engine, t Target, refs []string, o Options, emit func(Event)) (int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var last atomic.Int64
	touch := func() { last.Store(time.Now().UnixNano()) }
	touch()
	errStall := fmt.Errorf("no progress for %s: transfer abandoned", o.Stall)
	go func() {
		tick := time.NewTicker(min(o.Stall/4+1, time.Second))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if time.Since(time.Unix(0, last.Load())) > o.Stall {
					cancel(errStall)
					return
				}
			}
		}
	}()

	// The save answers as it writes: its bound covers the headers only.
	rc, err := src.ImageSave(boundhttp.Stream(ctx), refs)
	if err != nil {
		return 0, fmt.Errorf("save %s on the source engine: %w", strings.Join(refs, " "), orCause(ctx, err))
	}
	defer rc.Close()
	cr := &countingReader{r: rc, touch: touch}
	var lastEmit time.Time
	cr.onRead = func(n int64) {
		if time.Since(lastEmit) >= o.ProgressEvery {
			lastEmit = time.Now()
			emit(Event{Kind: EventProgress, Target: t.Name, Bytes: n})
		}
	}
	resp, err := t.Engine.ImageLoad(ctx, cr)
	if err != nil {
		return cr.n, fmt.Errorf("load on %s: %w", t.Name, orCause(ctx, err))
	}
	defer resp.Body.Close()
	if err := readLoad(resp, touch); err != nil {
		return cr.n, fmt.Errorf("load on %s: %w", t.Name, orCause(ctx, err))
	}
	emit(Event{Kind: EventProgress, Target: t.Name, Bytes: cr.n})
	return cr.n, nil
}

func orCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// readLoad drains the engine's answer to a load; an error message in the
// stream is the load's failure.
func readLoad(resp image.LoadResponse, touch func()) error {
	if !resp.JSON {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		touch()
		if err != nil {
			return err
		}
		if s := strings.TrimSpace(string(b)); s != "" && !strings.HasPrefix(s, "Loaded image") {
			return errors.New(s)
		}
		return nil
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		touch()
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
		if m.ErrorMessage != "" { //nolint:staticcheck // older engines set only this
			return errors.New(m.ErrorMessage) //nolint:staticcheck
		}
	}
}

type countingReader struct {
	r      io.Reader
	n      int64
	touch  func()
	onRead func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		c.touch()
		if c.onRead != nil {
			c.onRead(c.n)
		}
	}
	return n, err
}

var hexRef = regexp.MustCompile(`^(sha256:)?[0-9a-f]{12,64}$`)

// isIDRef reports whether ref names the image by (a prefix of) its ID.
func isIDRef(ref, id string) bool {
	return hexRef.MatchString(ref) && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(ref, "sha256:"))
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
