package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// RotatorOptions configure RunRotator.
type RotatorOptions struct {
	// Every: rotate when the current key has signed this long.
	Every time.Duration
	// Check is the mean interval between checks (default Every/10, at
	// most one minute, at least one second); each wait is drawn from
	// [Check/2, Check*3/2] so copies started together do not stampede.
	Check time.Duration
	// RetryBase and RetryMax bound the backoff after an error (default
	// 1 s and 5 min).
	RetryBase, RetryMax time.Duration
	// Logf gets one line per action.
	Logf func(format string, a ...any)
	// Rotate holds the rest of each rotation's options (grace, alg).
	Rotate RotateOptions
}

// RotatorRecord is the value of the leader key: who leads, and how often it
// rotates; doctor reads it.
type RotatorRecord struct {
	Who   string        `json:"who"`
	Every time.Duration `json:"every_ns"`
	Since time.Time     `json:"since"`
}

// RotatorKey is the KV key rotators elect their leader with: under the
// ring's lock prefix, so the operator policy that may lock the ring may
// also lead its rotators.
func (s *Store) RotatorKey() string { return s.LockKey() + "/rotator" }

// MinRotatorEvery is the shortest --every the rotator accepts.
const MinRotatorEvery = 2 * time.Second

// RunRotator rotates the ring whenever its current key has signed for
// o.Every, until ctx is done. Any number of copies may run: they elect one
// leader through a Consul session lock on RotatorKey (the others wait on it
// with a blocking query); only the leader rotates, each rotation fenced by
// both the ring's lock and the leader's session, so a leader that lost its
// session writes nothing; and the age is checked again under the ring's
// lock, so a rotation is never doubled. Errors (a token that may not
// write, Consul away) are logged and retried with backoff. It returns nil
// when ctx ends.
func (s *Store) RunRotator(ctx context.Context, o RotatorOptions) error {
	if o.Every < MinRotatorEvery {
		return fmt.Errorf("--every %s: at least %s", o.Every, MinRotatorEvery)
	}
	if o.Check <= 0 {
		o.Check = min(max(o.Every/10, time.Second), time.Minute)
	}
	if o.RetryBase <= 0 {
		o.RetryBase = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	// The JWKS endpoint lets caches keep the set for up to half the ring's
	// rotation period (MaxAgeLimit); rotating faster than that could make
	// a key sign before every cache has seen it.
	ring, err := s.Ring(ctx)
	if err != nil {
		return err
	}
	if lim := MaxAgeLimit(ring); o.Every < lim {
		return &EveryTooShortError{Every: o.Every, Limit: lim, Period: ring.RotationPeriod.Duration()}
	}
	rec, _ := json.Marshal(RotatorRecord{Who: s.o.Actor, Every: o.Every, Since: s.now()})
	failures := 0
	retry := func(what string, err error) bool {
		failures++
		d := registry.Backoff(failures, o.RetryBase, o.RetryMax)
		o.Logf("error: %s: %v (retry in %s)", what, err, d.Round(time.Millisecond))
		return sleepFor(ctx, d)
	}
	standby := false
	for ctx.Err() == nil {
		// Try at once, so a standby says so; then wait on the leader key
		// with a blocking query.
		lock, err := s.kv.AcquireLock(ctx, s.RotatorKey(), rec,
			registry.WithLockWait(0), registry.WithLockName("microctl key rotator "+s.o.Path))
		var held *registry.LockHeldError
		if errors.As(err, &held) {
			if !standby {
				o.Logf("standby: %s leads", parseRotator(held.Holder).Who)
				standby = true
			}
			lock, err = s.kv.AcquireLock(ctx, s.RotatorKey(), rec,
				registry.WithLockWait(5*time.Minute), registry.WithLockName("microctl key rotator "+s.o.Path))
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.As(err, &held) {
				continue
			}
			if !retry("become leader", err) {
				break
			}
			continue
		}
		standby = false
		o.Logf("leader: rotating %s when the current key has signed for %s", s.o.Path, o.Every)
		ok := s.lead(ctx, lock, o, &failures, retry)
		_ = lock.Release(context.WithoutCancel(ctx))
		if !ok {
			break
		}
	}
	o.Logf("stopped")
	return nil
}

// lead checks and rotates while this rotator holds the leader lock. It
// returns false when ctx ended, true when leadership was lost.
func (s *Store) lead(ctx context.Context, lock *registry.Lock, o RotatorOptions, failures *int, retry func(string, error) bool) bool {
	fenced := *s
	fenced.fence = lock
	for {
		select {
		case <-ctx.Done():
			return false
		case <-lock.Lost():
			o.Logf("lost leadership: the session of %s ended; not writing", s.RotatorKey())
			return true
		default:
		}
		ring, err := s.Ring(ctx)
		if err == nil {
			err = s.checkSealing(ring)
		}
		if err == nil {
			cur := ring.CurrentKey()
			age := s.now().Sub(*cur.ActivatedAt)
			if age >= o.Every {
				ro := o.Rotate
				ro.IfOlderThan = o.Every
				var res *Result
				res, err = fenced.Rotate(ctx, ro)
				if err == nil {
					*failures = 0
					if res.Changed {
						o.Logf("rotated %s: generation %d, current %s, next %s (the previous key had signed for %s)",
							s.o.Path, res.Generation, res.Current, res.Next, age.Round(time.Second))
					}
				}
			} else {
				*failures = 0
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			var lost *LostRaceError
			if errors.As(err, &lost) {
				// The fence failed: this rotator's leader session, or the
				// ring, changed under it. Stand for election again.
				o.Logf("not rotated: %v; standing for leader again", err)
				return true
			}
			if !retry("rotate", err) {
				return false
			}
			continue
		}
		wait := o.Check/2 + time.Duration(rand.Int64N(int64(o.Check)+1))
		select {
		case <-ctx.Done():
			return false
		case <-lock.Lost():
		case <-time.After(wait):
		}
	}
}

func parseRotator(b []byte) RotatorRecord {
	var r RotatorRecord
	_ = json.Unmarshal(b, &r)
	if r.Who == "" {
		r.Who = "another rotator"
	}
	return r
}

// RotatorStatus is what doctor says about the ring's rotator.
type RotatorStatus struct {
	Running     bool          `json:"running"`
	Who         string        `json:"who,omitempty"`
	Every       time.Duration `json:"every_ns,omitempty"`
	LastRotated *time.Time    `json:"last_rotated,omitempty"`
	Next        *time.Time    `json:"next,omitempty"`
}

// Rotator reports whether a rotator leads the ring, when the current key
// became current and when the leader will rotate next.
func (s *Store) Rotator(ctx context.Context, ring *Ring) (RotatorStatus, error) {
	var st RotatorStatus
	if cur := ring.CurrentKey(); cur != nil && cur.ActivatedAt != nil {
		st.LastRotated = cur.ActivatedAt
	}
	e, err := s.kv.KVGet(ctx, s.RotatorKey())
	if err != nil {
		return st, err
	}
	if e == nil || e.Session == "" {
		return st, nil
	}
	r := parseRotator(e.Value)
	st.Running, st.Who, st.Every = true, r.Who, r.Every
	if st.LastRotated != nil && r.Every > 0 {
		st.Next = ptr(st.LastRotated.Add(r.Every))
	}
	return st, nil
}

// EveryTooShortError means --every is shorter than the JWKS endpoint's
// longest max-age for the ring.
type EveryTooShortError struct {
	Every, Limit, Period time.Duration
}

func (e *EveryTooShortError) Error() string {
	return fmt.Sprintf("--every %s is shorter than %s, half the ring's rotation period %s: JWKS caches may keep a set that long, so a new key could sign before they know it",
		e.Every, e.Limit, e.Period)
}

// Hint says what to do about it.
func (e *EveryTooShortError) Hint() string {
	return fmt.Sprintf("use --every %s or more; the ring's rotation period is set by key init --rotation-period", e.Limit)
}
