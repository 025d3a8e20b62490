package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// Two deploys of one stack at once race on every service's version
// ("update out of sequence") and undo each other. A deploy therefore holds
// a lock for its stack while it runs, kept on the engine itself so that it
// needs nothing else: a Swarm config object whose name is the lock. The
// engine creates a name once (a second create is a conflict), so creating
// it is taking the lock and removing it is releasing it. The config carries
// who holds it and until when: a deploy that died without releasing (kill
// -9, a lost connection) leaves a lock that expires with its deadline.

// LockAPI is what the deploy lock needs from the engine.
type LockAPI interface {
	ConfigCreate(ctx context.Context, config swarm.ConfigSpec) (swarm.ConfigCreateResponse, error)
	ConfigList(ctx context.Context, options swarm.ConfigListOptions) ([]swarm.Config, error)
	ConfigRemove(ctx context.Context, id string) error
}

// Labels of the lock config. It deliberately carries no stack namespace
// label: it is not part of the stack, and no stack cleanup may touch it.
const (
	LabelLockStack   = "microctl.deploy-lock.stack"
	LabelLockHolder  = "microctl.deploy-lock.holder"
	LabelLockExpires = "microctl.deploy-lock.expires"
)

// LockName is the name of the lock config of a stack.
func LockName(stack string) string { return "microctl-deploy-lock_" + stack }

// LockOptions tune AcquireLock.
type LockOptions struct {
	// TTL is how long the lock holds if never released: the deploy's
	// whole bound (its --timeout and the rollback after it).
	TTL time.Duration
	// Wait waits (until ctx ends) for a deploy holding the lock to finish;
	// false fails at once.
	Wait bool
	// Poll is the interval between attempts while waiting (default 1s).
	Poll time.Duration
	// Holder says who holds it (default host:pid).
	Holder string
	// OnWait is called once when the lock is found held and Wait is set.
	OnWait func(*LockHeldError)
	Now    func() time.Time
}

// LockHeldError means another deploy of the stack holds the lock.
type LockHeldError struct {
	Stack, Holder string
	Expires       time.Time
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("another deploy of stack %s is running (%s, lock held until %s at the latest)",
		e.Stack, e.Holder, e.Expires.UTC().Format(time.RFC3339))
}

// Hint says what to do about it.
func (e *LockHeldError) Hint() string {
	return fmt.Sprintf("wait for it to finish; if no deploy runs, remove the lock with: docker config rm %s", LockName(e.Stack))
}

// Lock is a held deploy lock.
type Lock struct {
	api   LockAPI
	id    string
	stack string
}

// AcquireLock takes the deploy lock of stack, waiting for another deploy
// to finish when o.Wait is set. An expired lock (its holder died) is
// removed and taken over.
func AcquireLock(ctx context.Context, api LockAPI, stack string, o LockOptions) (*Lock, error) {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	if o.Holder == "" {
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("microctl pid %d on %s", os.Getpid(), host)
	}
	told := false
	for {
		expires := o.Now().Add(o.TTL)
		labels := map[string]string{LabelLockStack: stack, LabelLockHolder: o.Holder, LabelLockExpires: expires.UTC().Format(time.RFC3339)}
		data, _ := json.Marshal(labels)
		resp, err := api.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: LockName(stack), Labels: labels}, Data: data})
		if err == nil {
			return &Lock{api: api, id: resp.ID, stack: stack}, nil
		}
		if !cerrdefs.IsConflict(err) && !cerrdefs.IsAlreadyExists(err) {
			return nil, fmt.Errorf("take the deploy lock of stack %s: %w", stack, err)
		}
		held, id, err := currentLock(ctx, api, stack)
		if err != nil {
			return nil, err
		}
		if held == nil {
			continue // released between our create and our look: try again
		}
		if !held.Expires.IsZero() && o.Now().After(held.Expires) {
			// Its holder is gone: take it over. If two deploys do this at
			// once, one create wins and the other waits or fails.
			if err := api.ConfigRemove(ctx, id); err != nil && !cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("remove the expired deploy lock of stack %s: %w", stack, err)
			}
			continue
		}
		if !o.Wait {
			return nil, held
		}
		if !told && o.OnWait != nil {
			o.OnWait(held)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up waiting: %w)", held, ctx.Err())
		case <-time.After(o.Poll):
		}
	}
}

// currentLock reads the lock config of stack; nil when there is none.
func currentLock(ctx context.Context, api LockAPI, stack string) (*LockHeldError, string, error) {
	list, err := api.ConfigList(ctx, swarm.ConfigListOptions{Filters: filters.NewArgs(filters.Arg("name", LockName(stack)))})
	if err != nil {
		return nil, "", fmt.Errorf("read the deploy lock of stack %s: %w", stack, err)
	}
	for _, c := range list {
		// The name filter matches prefixes: stack a's lock is a prefix of
		// stack ab's.
		if c.Spec.Name != LockName(stack) {
			continue
		}
		e := &LockHeldError{Stack: stack, Holder: c.Spec.Labels[LabelLockHolder]}
		if t, err := time.Parse(time.RFC3339, c.Spec.Labels[LabelLockExpires]); err == nil {
			e.Expires = t
		}
		if e.Holder == "" {
			e.Holder = "holder unknown"
		}
		return e, c.ID, nil
	}
	return nil, "", nil
}

// Release gives the lock up. It runs even after the deploy's context was
// cancelled, so it takes its own.
func (l *Lock) Release(ctx context.Context) error {
	if l == nil {
		return nil
	}
	err := l.api.ConfigRemove(ctx, l.id)
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("release the deploy lock of stack %s: %w", l.stack, err)
	}
	return nil
}

// IsLockHeld reports whether err is another deploy holding the lock.
func IsLockHeld(err error) bool {
	var e *LockHeldError
	return errors.As(err, &e)
}
