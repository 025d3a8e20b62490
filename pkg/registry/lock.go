package registry

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// LockOptions tune AcquireLock.
type LockOptions struct {
	// TTL of the session behind the lock (default 15 s, Consul's minimum
	// is 10 s). The lock renews it every TTL/2 while held; a holder that
	// dies loses the lock after the TTL.
	TTL time.Duration
	// Wait is how long to wait for another holder to let go; 0 tries once.
	Wait time.Duration
	// Name of the session, shown by `consul operator` and the UI.
	Name string
}

// LockOption sets a LockOptions field.
type LockOption func(*LockOptions)

// WithLockTTL sets the session TTL.
func WithLockTTL(d time.Duration) LockOption { return func(o *LockOptions) { o.TTL = d } }

// WithLockWait sets how long to wait for the lock.
func WithLockWait(d time.Duration) LockOption { return func(o *LockOptions) { o.Wait = d } }

// WithLockName names the session.
func WithLockName(n string) LockOption { return func(o *LockOptions) { o.Name = n } }

// LockHeldError means another session held the lock for all of the wait.
type LockHeldError struct {
	Key     string
	Session string // the holder's session
	Holder  []byte // the value the holder stored in the lock key
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("lock %s is held by session %s", e.Key, e.Session)
}

// Lock is a Consul session lock on one key. Holding it is a claim, not a
// guarantee: the session can be invalidated at any moment (TTL missed, the
// node's health check failing, an operator destroying it). Writes made
// under the lock must be fenced with Txn.CheckSession(l.Key, l.Session) so
// that a holder who lost it writes nothing.
type Lock struct {
	c       *Client
	Key     string
	Session string

	stop     chan struct{}
	done     chan struct{}
	lost     chan struct{}
	lostOnce sync.Once
	release  sync.Once
}

// AcquireLock creates a session and takes key with it, storing value
// there (who holds it, for the error the next operator sees). It waits up
// to WithLockWait for another holder to let go, with a blocking query on
// the key rather than polling.
func (c *Client) AcquireLock(ctx context.Context, key string, value []byte, opts ...LockOption) (*Lock, error) {
	o := LockOptions{TTL: 15 * time.Second, Name: "microctl lock " + key}
	for _, opt := range opts {
		opt(&o)
	}
	wq := (&api.WriteOptions{}).WithContext(ctx)
	entry := &api.SessionEntry{
		Name: o.Name,
		TTL:  o.TTL.String(),
		// Destroying the session deletes the lock key, so a released or
		// expired lock leaves nothing behind.
		Behavior: api.SessionBehaviorDelete,
		// Consul's default lock-delay (15 s) protects holders that write
		// without a fence; every write under this lock carries a
		// check-session, so the delay would only make the next operator
		// wait for nothing.
		LockDelay: time.Millisecond,
	}
	var id string
	for attempt := 1; ; attempt++ {
		var err error
		id, _, err = c.API.Session().Create(entry, wq)
		if err == nil {
			break
		}
		// A session is tied to the agent's node, which an agent that has
		// just started may not have registered in the catalog yet.
		if strings.Contains(err.Error(), "Missing node registration") && attempt < 50 {
			if !sleepCtx(ctx, 100*time.Millisecond) {
				return nil, ctx.Err()
			}
			continue
		}
		return nil, fmt.Errorf("create a session for lock %s: %w", key, c.Err(err))
	}
	destroy := func() {
		// A fresh context: the caller's may be the reason we are giving up.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = c.API.Session().Destroy(id, (&api.WriteOptions{}).WithContext(dctx))
	}
	deadline := time.Now().Add(o.Wait)
	for attempt := 1; ; attempt++ {
		ok, _, err := c.API.KV().Acquire(&api.KVPair{Key: key, Value: value, Session: id}, wq)
		if err != nil {
			destroy()
			return nil, fmt.Errorf("acquire lock %s: %w", key, c.kvErr(key, "write", err))
		}
		if ok {
			l := &Lock{c: c, Key: key, Session: id, stop: make(chan struct{}), done: make(chan struct{}), lost: make(chan struct{})}
			go l.renew(o.TTL)
			return l, nil
		}
		e, err := c.KVGet(ctx, key)
		if err != nil {
			destroy()
			return nil, err
		}
		free := e == nil || e.Session == ""
		if free && attempt < 10 {
			// Free, yet the acquire failed: the lock-delay Consul applies
			// after the previous holder's session ended. That is not
			// someone holding the lock, so retry shortly even when told
			// not to wait.
			if !sleepCtx(ctx, Backoff(attempt, 10*time.Millisecond, 500*time.Millisecond)) {
				destroy()
				return nil, ctx.Err()
			}
			continue
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			destroy()
			held := &LockHeldError{Key: key}
			if e != nil {
				held.Session, held.Holder = e.Session, e.Value
			}
			return nil, held
		}
		if free {
			if !sleepCtx(ctx, min(remaining, Backoff(attempt, 10*time.Millisecond, time.Second))) {
				destroy()
				return nil, ctx.Err()
			}
			continue
		}
		// Wait at most half the session's TTL at a time and renew it after
		// each wait: a session that waited longer than its TTL unrenewed
		// would be invalidated right after it acquired the lock.
		if _, _, err := c.KVWatch(ctx, key, e.ModifyIndex, min(remaining, o.TTL/2)); err != nil {
			destroy()
			return nil, err
		}
		if se, _, err := c.API.Session().Renew(id, wq); err != nil || se == nil {
			destroy()
			if err == nil {
				err = fmt.Errorf("session %s expired while waiting", id)
			}
			return nil, fmt.Errorf("wait for lock %s: %w", key, c.Err(err))
		}
	}
}

// renew keeps the session alive until Release, and closes Lost when Consul
// says the session is gone.
func (l *Lock) renew(ttl time.Duration) {
	defer close(l.done)
	t := time.NewTicker(ttl / 2)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/2)
		entry, _, err := l.c.API.Session().Renew(l.Session, (&api.WriteOptions{}).WithContext(ctx))
		cancel()
		if err == nil && entry == nil {
			l.lostOnce.Do(func() { close(l.lost) })
			return
		}
	}
}

// Lost is closed when the lock is known to be lost. Not being closed proves
// nothing: fence writes with CheckSession.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Release gives the lock up: it destroys the session, which deletes the
// lock key. Safe to call more than once.
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.release.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, e := l.c.API.Session().Destroy(l.Session, (&api.WriteOptions{}).WithContext(ctx)); e != nil {
			err = fmt.Errorf("release lock %s: %w", l.Key, l.c.Err(e))
		}
	})
	return err
}
