package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"time"

	"github.com/hashicorp/consul/api"
)

// KVEntry is one key of Consul's KV store as microctl uses it: the value and
// the ModifyIndex a later check-and-set compares against.
type KVEntry struct {
	Key         string
	Value       []byte
	ModifyIndex uint64
	Session     string // the session holding the key as a lock, if any
}

// KVListing is the result of listing a prefix.
type KVListing struct {
	Entries []KVEntry
	// Index is the X-Consul-Index of the read, for a blocking query.
	Index uint64
	// FilteredByACL is true when Consul left out keys the token may not
	// read. A listing with keys missing must never be the basis of a write
	// that claims to cover the whole prefix.
	FilteredByACL bool
}

// KVDeniedError means Consul refused an operation on a KV path because of
// ACLs. Key is the path (or the first path Consul named), Access is "read"
// or "write". It wraps the PermissionError, so errors.As finds either.
type KVDeniedError struct {
	Key    string
	Access string
	Err    *PermissionError
}

func (e *KVDeniedError) Error() string {
	return fmt.Sprintf("Consul at %s denied %s access to KV %q: %s", e.Err.Addr, e.Access, e.Key, e.Err.Detail)
}
func (e *KVDeniedError) Unwrap() error { return e.Err }

// Hint names the policy rule that would allow the operation.
func (e *KVDeniedError) Hint() string {
	return fmt.Sprintf("the token needs key_prefix %q { policy = %q }; set --consul-token or CONSUL_HTTP_TOKEN", e.Key, e.Access)
}

// Consul names the resource in its denial: lacks permission 'key:write' on "a/b".
var deniedRe = regexp.MustCompile(`lacks permission '(\w+):(\w+)' on "([^"]*)"`)

// kvErr classifies err from a KV call on key. A permission error becomes a
// KVDeniedError naming the path Consul refused (Consul's own message when it
// names one, else key).
func (c *Client) kvErr(key, access string, err error) error {
	err = c.Err(err)
	var pe *PermissionError
	if !errors.As(err, &pe) {
		return err
	}
	return deniedError(pe, key, access)
}

func deniedError(pe *PermissionError, key, access string) error {
	if m := deniedRe.FindStringSubmatch(pe.Detail); m != nil {
		if m[1] != "key" {
			// Not a KV permission (session:write, for a lock): keep the
			// plain PermissionError, whose detail names what was missing.
			return pe
		}
		access, key = m[2], m[3]
	}
	return &KVDeniedError{Key: key, Access: access, Err: pe}
}

func entryOf(p *api.KVPair) KVEntry {
	return KVEntry{Key: p.Key, Value: p.Value, ModifyIndex: p.ModifyIndex, Session: p.Session}
}

// KVGet reads one key; a missing key is (nil, nil).
func (c *Client) KVGet(ctx context.Context, key string) (*KVEntry, error) {
	p, _, err := c.API.KV().Get(key, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, c.kvErr(key, "read", err))
	}
	if p == nil {
		return nil, nil
	}
	e := entryOf(p)
	return &e, nil
}

// KVList reads every key under prefix. Pass a prefix ending in "/" to list a
// folder: "micro/config/jwt" would also match "micro/config/jwt-key".
func (c *Client) KVList(ctx context.Context, prefix string) (KVListing, error) {
	ps, meta, err := c.API.KV().List(prefix, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return KVListing{}, fmt.Errorf("list %s: %w", prefix, c.kvErr(prefix, "read", err))
	}
	l := KVListing{Index: meta.LastIndex, FilteredByACL: meta.ResultsFilteredByACLs}
	for _, p := range ps {
		l.Entries = append(l.Entries, entryOf(p))
	}
	return l, nil
}

// KVKeys lists the keys under prefix without their values.
func (c *Client) KVKeys(ctx context.Context, prefix string) ([]string, error) {
	keys, _, err := c.API.KV().Keys(prefix, "", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, c.kvErr(prefix, "list", err))
	}
	return keys, nil
}

// KVWatch is a blocking read of key: it returns when the key's index moves
// past index or after wait (Consul caps it at 10 minutes). It returns the
// entry (nil when the key does not exist) and the index to pass next time.
// A return is no promise that anything changed; compare the index, and
// start again from 0 if it went backwards (a snapshot restore, a new
// cluster): FollowKV does all of that.
func (c *Client) KVWatch(ctx context.Context, key string, index uint64, wait time.Duration) (*KVEntry, uint64, error) {
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx)
	p, meta, err := c.API.KV().Get(key, q)
	if err != nil {
		return nil, index, fmt.Errorf("watch %s: %w", key, c.kvErr(key, "read", err))
	}
	if p == nil {
		return nil, meta.LastIndex, nil
	}
	e := entryOf(p)
	return &e, meta.LastIndex, nil
}

// KVWatcher is what FollowKV needs: *Client is one.
type KVWatcher interface {
	KVWatch(ctx context.Context, key string, index uint64, wait time.Duration) (*KVEntry, uint64, error)
}

// FollowOptions tune FollowKV. The zero value is usable.
type FollowOptions struct {
	// Wait is the blocking query's wait time (default 5 minutes).
	Wait time.Duration
	// MinInterval rate-limits the loop: a change that arrives sooner than
	// this after the previous one is delivered after the remainder
	// (default 50 ms). A key rewritten in a tight loop cannot turn the
	// watcher into a busy loop against Consul.
	MinInterval time.Duration
	// MaxBackoff caps the wait after consecutive errors (default 30 s).
	MaxBackoff time.Duration
	// OnError is told about each failed read; the loop carries on.
	OnError func(error)
	// Margin is how long past its wait (plus Consul's jitter of wait/16) a
	// blocking read may take before it is given up as unanswered and
	// retried (default 30 s): a silent agent or a half-open connection
	// must not freeze the follower for ever.
	Margin time.Duration
}

// FollowKV calls onChange with the current value of key (nil when absent)
// and again every time its ModifyIndex changes, until ctx is done. It uses
// blocking queries, never a polling loop: index+wait, the index reset to 0
// when it goes backwards, exponential backoff with jitter after errors.
// onChange runs on FollowKV's goroutine; FollowKV returns ctx's error.
func FollowKV(ctx context.Context, w KVWatcher, key string, opts FollowOptions, onChange func(*KVEntry)) error {
	if opts.Wait <= 0 {
		opts.Wait = 5 * time.Minute
	}
	if opts.MinInterval <= 0 {
		opts.MinInterval = 50 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Margin <= 0 {
		opts.Margin = 30 * time.Second
	}
	bound := opts.Wait + opts.Wait/16 + opts.Margin
	var (
		index     uint64
		delivered bool
		lastMod   uint64
		failures  int
		last      time.Time
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if since := time.Since(last); !last.IsZero() && since < opts.MinInterval {
			if !sleepCtx(ctx, opts.MinInterval-since) {
				return ctx.Err()
			}
		}
		last = time.Now()
		rctx, cancel := context.WithTimeout(ctx, bound)
		e, next, err := w.KVWatch(rctx, key, index, opts.Wait)
		if err != nil && ctx.Err() == nil && rctx.Err() != nil {
			err = fmt.Errorf("reading %s: no answer within %s (wait %s + margin): %w", key, bound, opts.Wait, err)
		}
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			if opts.OnError != nil {
				opts.OnError(err)
			}
			if !sleepCtx(ctx, Backoff(failures, 100*time.Millisecond, opts.MaxBackoff)) {
				return ctx.Err()
			}
			continue
		}
		failures = 0
		switch {
		case next < index:
			// The index went backwards: start over, or we would block on
			// an index the cluster will not reach for a long time.
			index = 0
		case next == 0:
			index = 0
		default:
			index = next
		}
		var mod uint64
		if e != nil {
			mod = e.ModifyIndex
		}
		if delivered && mod == lastMod {
			continue // a timeout or an unrelated write: no change for us
		}
		delivered, lastMod = true, mod
		onChange(e)
	}
}

// Backoff returns the wait before retry number n (1-based): base doubled
// each time up to max, with up to 50% random jitter taken off so that many
// clients that failed together do not retry together.
func Backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d - time.Duration(jitter(int64(d/2)))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}
