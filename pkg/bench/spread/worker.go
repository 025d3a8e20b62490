package spread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/microctl/microctl/pkg/bench"
)

// RunFunc runs one worker's load; bench.Run in production.
type RunFunc func(ctx context.Context, opts ...bench.Option) (*bench.Result, error)

// WorkerOptions configure Work.
type WorkerOptions struct {
	Task, Node string // from the Swarm task's templated environment
	// Poll is the pause between two reads while the spec is not there
	// yet. Default 200ms.
	Poll time.Duration
	// SpecWait bounds the wait for the spec. Default 1m.
	SpecWait time.Duration
	Run      RunFunc
	Now      func() time.Time
}

// Work is one worker's life: read the plan, claim a free slot, wait at
// the barrier, run the slot's share, and write the result (or why there
// is none) back. It returns the slot's identity and the run's error.
func Work(ctx context.Context, kv KV, prefix string, o WorkerOptions) (Identity, error) {
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.SpecWait <= 0 {
		o.SpecWait = time.Minute
	}
	if o.Run == nil {
		o.Run = bench.Run
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	id := Identity{Slot: -1, Task: o.Task, Node: o.Node}
	id.Hostname, _ = os.Hostname()

	var plan Plan
	deadline := o.Now().Add(o.SpecWait)
	for {
		b, ok, err := kv.Get(ctx, keySpec(prefix))
		if err == nil && ok {
			if err := json.Unmarshal(b, &plan); err != nil {
				return id, fmt.Errorf("the plan at %s: %w", keySpec(prefix), err)
			}
			break
		}
		if o.Now().After(deadline) {
			return id, fmt.Errorf("no plan at %s after %s (last error: %v)", keySpec(prefix), o.SpecWait, err)
		}
		if err := sleep(ctx, o.Poll); err != nil {
			return id, err
		}
	}
	for i := range plan.Workers {
		id.Slot, id.Claimed = i, o.Now()
		ok, err := kv.Create(ctx, keyClaim(prefix, i), mustJSON(id))
		if err != nil {
			return id, err
		}
		if ok {
			break
		}
		id.Slot = -1
	}
	if id.Slot < 0 {
		return id, fmt.Errorf("every one of the %d slots is claimed already", len(plan.Workers))
	}
	err := runSlot(ctx, kv, prefix, plan, id, o)
	if err != nil && ctx.Err() == nil {
		// Said in KV so that the coordinator names the cause, not just a
		// worker that never reported; not when ctx ended (the coordinator
		// stopped us and removes the prefix).
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = kv.Put(wctx, keyError(prefix, id.Slot), []byte(err.Error()))
		cancel()
	}
	return id, err
}

func runSlot(ctx context.Context, kv KV, prefix string, plan Plan, id Identity, o WorkerOptions) error {
	spec := plan.Workers[id.Slot]
	bopts, err := spec.Options()
	if err != nil {
		return err
	}
	start, err := waitStart(ctx, kv, prefix, plan.StartBy, o)
	if err != nil {
		return err
	}
	if d := start.At.Sub(o.Now()); d > 0 {
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	out := Outcome{Identity: id, Began: o.Now()}
	res, err := o.Run(ctx, bopts...)
	if ctx.Err() != nil {
		// Stopped from outside: the service is being removed (Ctrl-C or a
		// failure elsewhere) and its prefix with it. Writing now would
		// leave keys behind.
		return ctx.Err()
	}
	if res == nil {
		if err == nil {
			err = errors.New("the run returned no result")
		}
		return err
	}
	b, merr := res.MarshalWire()
	if merr != nil {
		return merr
	}
	if len(b) > 500<<10 {
		return fmt.Errorf("the result is %d bytes, over Consul's 512 KB per value", len(b))
	}
	if err := kv.Put(ctx, keyOutcome(prefix, id.Slot), mustJSON(out)); err != nil {
		return err
	}
	// The result is written last: its presence says the slot is done.
	return kv.Put(ctx, keyResult(prefix, id.Slot), b)
}

// waitStart blocks until the barrier opens, bounded by startBy.
func waitStart(ctx context.Context, kv KV, prefix string, startBy time.Time, o WorkerOptions) (Start, error) {
	var index uint64
	for {
		left := startBy.Sub(o.Now())
		if left <= 0 {
			return Start{}, fmt.Errorf("the barrier at %s did not open by %s", keyStart(prefix), startBy.Format(time.RFC3339))
		}
		wait := min(left, 10*time.Second)
		wctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
		b, ok, next, err := kv.Watch(wctx, keyStart(prefix), index, wait)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return Start{}, ctx.Err()
			}
			if err := sleep(ctx, o.Poll); err != nil {
				return Start{}, err
			}
			continue
		}
		if ok {
			var s Start
			if err := json.Unmarshal(b, &s); err != nil {
				return Start{}, fmt.Errorf("the barrier at %s: %w", keyStart(prefix), err)
			}
			return s, nil
		}
		if next < index {
			next = 0
		}
		if next == index {
			// No change reported; do not spin on a KV that answers at once.
			if err := sleep(ctx, o.Poll); err != nil {
				return Start{}, err
			}
		}
		index = next
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
