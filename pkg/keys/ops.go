package keys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// LegacyWarning is said on every write in legacy mode: a shared secret
// cannot be rotated without breaking the tokens already issued with it.
func LegacyWarning(path string) string {
	return fmt.Sprintf("legacy mode: %s now holds a new shared HS256 secret; rotating a shared secret invalidates every outstanding token at gateways that read it", path)
}

// InitOptions are the inputs of Init.
type InitOptions struct {
	Alg            Alg // default EdDSA; HS256 only with Legacy
	Bits           int // RS256 only
	MaxTokenTTL    time.Duration
	RotationPeriod time.Duration
	// Legacy also keeps {"key": secret} at the store's legacy path for
	// gateways that verify HS256 with one shared secret (the seed's).
	Legacy bool
	DryRun bool
}

// Init creates the ring: a current key that signs at once and a next key
// already published for the first rotation. In legacy mode an existing
// shared secret at the legacy path is adopted as the current key, so the
// tokens already issued with it keep working.
func (s *Store) Init(ctx context.Context, o InitOptions) (*Result, error) {
	if o.Alg == "" {
		o.Alg = EdDSA
		if o.Legacy {
			o.Alg = HS256
		}
	}
	if o.Legacy && o.Alg != HS256 {
		return nil, fmt.Errorf("legacy mode is HS256 (one shared secret), not %s", o.Alg)
	}
	if !o.Legacy && o.Alg == HS256 {
		return nil, errors.New("HS256 only in legacy mode (--legacy): a shared secret cannot be published in a JWKS")
	}
	if err := ValidateBits(o.Alg, o.Bits); err != nil {
		return nil, err
	}
	if o.MaxTokenTTL == 0 {
		o.MaxTokenTTL = DefaultMaxTokenTTL
	}
	if o.RotationPeriod == 0 {
		o.RotationPeriod = DefaultRotationPeriod
	}
	if o.MaxTokenTTL < 0 || o.RotationPeriod < 0 {
		return nil, errors.New("--max-token-ttl and --rotation-period must be positive")
	}
	return s.update(ctx, "init", o.DryRun, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring != nil {
			return nil, &RingExistsError{Path: s.o.Path, Current: snap.Ring.CurrentKey().Kid}
		}
		if err := s.checkOverlap(ctx, snap, o.Legacy); err != nil {
			return nil, err
		}
		ring := &Ring{Schema: SchemaVersion, Alg: o.Alg, Bits: o.Bits,
			MaxTokenTTL: SecondsOf(o.MaxTokenTTL), RotationPeriod: SecondsOf(o.RotationPeriod), Keys: []Key{}}
		ch := &change{ring: ring}
		var cur *material
		if o.Legacy {
			ring.LegacyPath = s.o.LegacyPath
			adopted, err := s.adoptLegacy(ctx, snap)
			if err != nil {
				return nil, err
			}
			if adopted != nil {
				cur = adopted
				ch.res.Warnings = append(ch.res.Warnings, fmt.Sprintf("legacy mode: adopted the secret already at %s as the current key %s, so tokens issued with it keep working", s.o.LegacyPath, cur.kid))
				if err := CheckLegacySecret(string(cur.signer.([]byte))); err != nil {
					ch.res.Warnings = append(ch.res.Warnings, fmt.Sprintf("legacy mode: the adopted secret is unsafe: %v; rotate soon (microctl key rotate writes a safe one)", err))
				}
			} else {
				ch.res.Warnings = append(ch.res.Warnings, LegacyWarning(s.o.LegacyPath))
			}
		}
		if cur == nil {
			var err error
			if cur, err = generate(s.o.Rand, o.Alg, o.Bits); err != nil {
				return nil, err
			}
		}
		next, err := generate(s.o.Rand, o.Alg, o.Bits)
		if err != nil {
			return nil, err
		}
		ring.Keys = append(ring.Keys,
			Key{Kid: cur.kid, Alg: o.Alg, Bits: o.Bits, State: Current, CreatedAt: now, ActivatedAt: ptr(now)},
			Key{Kid: next.kid, Alg: o.Alg, Bits: o.Bits, State: Next, CreatedAt: now})
		ch.created = []*material{cur, next}
		ch.res.Added = []string{cur.kid, next.kid}
		return ch, nil
	})
}

// adoptLegacy returns the secret already at the legacy path, if any, and
// records the value in snap for the check-and-set that replaces it.
func (s *Store) adoptLegacy(ctx context.Context, snap *Snapshot) (*material, error) {
	e, err := s.kv.KVGet(ctx, s.o.LegacyPath)
	if err != nil || e == nil {
		return nil, err
	}
	snap.Legacy = e
	var v struct {
		Key string `json:"key"`
	}
	if err := requireObject(e.Value); err != nil {
		return nil, &CorruptError{Key: e.Key, Err: err}
	}
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return nil, &CorruptError{Key: e.Key, Err: err}
	}
	if len(v.Key) < 16 {
		return nil, nil // too weak to keep: replaced, with the warning
	}
	return fromSecret(v.Key)
}

// RotateOptions are the inputs of Rotate.
type RotateOptions struct {
	// Grace keeps the outgoing key verifiable this long; 0 means the
	// ring's required grace (the longest token lifetime configured or
	// issued).
	Grace time.Duration
	// Force accepts a grace shorter than the longest token lifetime.
	Force bool
	// Revoke retires the current key at once instead of keeping it
	// verifiable: every token it signed is rejected from now on.
	Revoke bool
	// Alg and Bits for the new next key (default: the ring's).
	Alg    Alg
	Bits   int
	DryRun bool
	// IfOlderThan, when positive, rotates only if the current key has
	// signed at least this long, checked under the lock: two schedulers
	// that decide to rotate at once rotate once.
	IfOlderThan time.Duration
}

// Rotate moves every key one step: next becomes current (it has been
// published since the last rotation), current becomes previous and stays
// verifiable for the grace, a fresh next is published, and previous keys
// past their retire_after are retired.
func (s *Store) Rotate(ctx context.Context, o RotateOptions) (*Result, error) {
	if o.Grace < 0 {
		return nil, errors.New("--grace must not be negative")
	}
	return s.update(ctx, "rotate", o.DryRun, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring == nil {
			return nil, &NoRingError{Path: s.o.Path}
		}
		if o.IfOlderThan > 0 {
			if cur := snap.Ring.CurrentKey(); cur.ActivatedAt != nil && now.Sub(*cur.ActivatedAt) < o.IfOlderThan {
				return &change{res: Result{Current: cur.Kid}}, nil
			}
		}
		ring := snap.Ring.clone()
		ch := &change{ring: ring, forced: o.Force}
		alg, bits := ring.Alg, ring.Bits
		if o.Alg != "" {
			alg, bits = o.Alg, o.Bits
		} else if o.Bits != 0 {
			bits = o.Bits
		}
		if err := checkAlg(ring, alg, bits); err != nil {
			return nil, err
		}
		grace, err := graceFor(ring, o.Grace, o.Force, o.Revoke)
		if err != nil {
			return nil, err
		}
		ch.grace = grace
		s.expire(ring, snap, ch, now)

		cur := ring.CurrentKey()
		if o.Revoke {
			retire(cur, now, true)
			// A leaked key's private half goes first, whatever else waits.
			ch.deleted = append([]string{cur.Kid}, ch.deleted...)
			ch.res.Revoked = append(ch.res.Revoked, cur.Kid)
			ch.res.Warnings = append(ch.res.Warnings, fmt.Sprintf("revoked %s: every token it signed is rejected as soon as verifiers see this change", cur.Kid))
		} else {
			cur.State = Previous
			cur.DeactivatedAt = ptr(now)
			cur.RetireAfter = ptr(now.Add(grace))
			ch.res.RetireAfter = cur.RetireAfter
			ch.res.Previous = cur.Kid
		}
		promoted := ring.NextKey()
		if promoted != nil && slices.Contains(snap.Missing, promoted.Kid) {
			// It never signed and cannot: retire it and publish a fresh
			// one below.
			retire(promoted, now, false)
			ch.res.Retired = append(ch.res.Retired, promoted.Kid)
			promoted = nil
		} else if promoted != nil && ring.LegacyPath != "" && promoted.ActivatedAt != nil {
			// Its secret was written to the legacy path before (it is
			// the key a rollback displaced): writing it again is a change
			// a go-config watcher can miss. Sign with a fresh key; the
			// old one keeps verifying as previous.
			promoted.State = Previous
			promoted.DeactivatedAt = ptr(now)
			promoted.RetireAfter = ptr(now.Add(grace))
			ch.res.Warnings = append(ch.res.Warnings, fmt.Sprintf("legacy mode: next key %s signed before; a fresh key signs instead, because gateways reading %s through go-config can miss a change back to an earlier secret", promoted.Kid, ring.LegacyPath))
			promoted = nil
		}
		if promoted == nil {
			// A broken or hand-edited ring: sign with a key nobody has
			// seen yet rather than not rotate, and say so.
			m, err := generate(s.o.Rand, alg, bits)
			if err != nil {
				return nil, err
			}
			ring.Keys = append(ring.Keys, Key{Kid: m.kid, Alg: alg, Bits: bits, State: Next, CreatedAt: now})
			ch.created = append(ch.created, m)
			ch.res.Added = append(ch.res.Added, m.kid)
			ch.res.Warnings = append(ch.res.Warnings, fmt.Sprintf("no next key was published: %s signs from now on without having been announced in advance", m.kid))
			promoted = &ring.Keys[len(ring.Keys)-1]
		}
		promoted.State = Current
		promoted.ActivatedAt = ptr(now)
		promoted.DeactivatedAt, promoted.RetireAfter = nil, nil

		m, err := generate(s.o.Rand, alg, bits)
		if err != nil {
			return nil, err
		}
		ring.Keys = append(ring.Keys, Key{Kid: m.kid, Alg: alg, Bits: bits, State: Next, CreatedAt: now})
		ch.created = append(ch.created, m)
		ch.res.Added = append(ch.res.Added, m.kid)
		if ring.LegacyPath != "" {
			ch.res.Warnings = append(ch.res.Warnings, LegacyWarning(ring.LegacyPath))
		}
		return ch, nil
	})
}

func checkAlg(ring *Ring, alg Alg, bits int) error {
	if err := ValidateBits(alg, bits); err != nil {
		return err
	}
	if ring.LegacyPath != "" && alg != HS256 {
		return fmt.Errorf("the ring is in legacy mode (HS256, mirrored to %s): it cannot take %s keys; microctl never leaves legacy mode by itself, because gateways reading %s through go-config keep the last secret written there, and would read the key \"null\" if it were deleted", ring.LegacyPath, alg, ring.LegacyPath)
	}
	if ring.LegacyPath == "" && alg == HS256 {
		return &AlgError{Err: errors.New("HS256 only in legacy mode: a shared secret cannot be published in a JWKS")}
	}
	return nil
}

// graceFor checks the grace asked for against the longest token lifetime.
func graceFor(ring *Ring, asked time.Duration, force, revoke bool) (time.Duration, error) {
	required := ring.RequiredGrace()
	if asked == 0 {
		return required, nil
	}
	if asked < required && !force && !revoke {
		why := fmt.Sprintf("the ring's max token TTL is %s", ring.MaxTokenTTL.Duration())
		if ring.IssuedMaxTTL > ring.MaxTokenTTL {
			why = fmt.Sprintf("key sign has issued tokens valid for %s", ring.IssuedMaxTTL.Duration())
		}
		return 0, &GraceTooShortError{Grace: asked, Required: required, Why: why}
	}
	return asked, nil
}

// expire retires previous keys whose retire_after has passed: they leave
// the JWKS and their private half is deleted.
func (s *Store) expire(ring *Ring, snap *Snapshot, ch *change, now time.Time) {
	for i := range ring.Keys {
		k := &ring.Keys[i]
		if k.State == Previous && !k.Verifiable(now) {
			retire(k, now, false)
			ch.res.Retired = append(ch.res.Retired, k.Kid)
		}
		if k.State == Retired {
			if _, ok := snap.private[k.Kid]; ok && !slices.Contains(ch.deleted, k.Kid) {
				ch.deleted = append(ch.deleted, k.Kid)
			}
		}
	}
}

func retire(k *Key, now time.Time, revoked bool) {
	if k.DeactivatedAt == nil && k.ActivatedAt != nil {
		k.DeactivatedAt = ptr(now)
	}
	k.State = Retired
	k.RetiredAt = ptr(now)
	k.Revoked = k.Revoked || revoked
	if revoked {
		k.RetireAfter = ptr(now)
	}
}

// RollbackOptions are the inputs of Rollback.
type RollbackOptions struct {
	Grace  time.Duration
	Force  bool
	DryRun bool
}

// Rollback undoes a rotation: the newest previous key that is still
// verifiable becomes current again. The key it replaces stays verifiable
// as next (so tokens it signed keep working and it can be promoted again);
// the next key it displaces is deleted if it never signed, or kept as
// previous for the grace if it did.
func (s *Store) Rollback(ctx context.Context, o RollbackOptions) (*Result, error) {
	if o.Grace < 0 {
		return nil, errors.New("--grace must not be negative")
	}
	return s.update(ctx, "rollback", o.DryRun, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring == nil {
			return nil, &NoRingError{Path: s.o.Path}
		}
		if snap.Ring.LegacyPath != "" {
			return nil, &LegacyRollbackError{LegacyPath: snap.Ring.LegacyPath}
		}
		ring := snap.Ring.clone()
		ch := &change{ring: ring, forced: o.Force}
		grace, err := graceFor(ring, o.Grace, o.Force, false)
		if err != nil {
			return nil, err
		}
		ch.grace = grace
		s.expire(ring, snap, ch, now)
		var back *Key
		for _, k := range ring.InState(Previous) {
			if back == nil || deactivated(k).After(deactivated(back)) {
				back = k
			}
		}
		if back == nil {
			return nil, errors.New("no previous key that is still verifiable to roll back to")
		}
		if slices.Contains(snap.Missing, back.Kid) {
			return nil, fmt.Errorf("the previous key %s has no private key at %s: it cannot sign again; rotate instead", back.Kid, s.PrivateKey(back.Kid))
		}
		backKid := back.Kid
		if next := ring.NextKey(); next != nil {
			if nextKid := next.Kid; next.ActivatedAt == nil {
				ring.Keys = slices.DeleteFunc(ring.Keys, func(k Key) bool { return k.Kid == nextKid })
				ch.deleted = append(ch.deleted, nextKid)
				ch.res.Pruned = append(ch.res.Pruned, nextKid)
			} else {
				next.State = Previous
				next.RetireAfter = ptr(now.Add(grace))
				ch.res.Previous, ch.res.RetireAfter = next.Kid, next.RetireAfter
			}
		}
		// Pointers into ring.Keys moved if a key was deleted: look again.
		cur := ring.CurrentKey()
		cur.State = Next
		cur.DeactivatedAt = ptr(now)
		back = ring.Find(backKid)
		back.State = Current
		back.ActivatedAt = ptr(now)
		back.DeactivatedAt, back.RetireAfter = nil, nil
		if ring.LegacyPath != "" {
			ch.res.Warnings = append(ch.res.Warnings, LegacyWarning(ring.LegacyPath))
		}
		return ch, nil
	})
}

func deactivated(k *Key) time.Time {
	if k.DeactivatedAt != nil {
		return *k.DeactivatedAt
	}
	return k.CreatedAt
}

// PruneOptions are the inputs of Prune.
type PruneOptions struct {
	DryRun bool
}

// Prune drops keys past their retire_after (and revoked keys) from the
// ring, with their private halves. Idempotent: with nothing to drop it
// writes nothing and takes no lock, so cron can run it as often as it likes.
func (s *Store) Prune(ctx context.Context, o PruneOptions) (*Result, error) {
	var total *Result
	for {
		res, err := s.pruneOnce(ctx, o)
		if err != nil {
			return nil, err
		}
		if total == nil {
			total = res
		} else {
			total.Pruned = append(total.Pruned, res.Pruned...)
			total.Generation, total.AuditKey = res.Generation, res.AuditKey
		}
		// A prune with more private keys to delete than one transaction
		// holds leaves the rest for another round; each round is a
		// complete, fenced change of its own.
		if o.DryRun || !res.Changed || res.deferred == 0 {
			s.warnBroken(ctx, total)
			return total, nil
		}
	}
}

func (s *Store) pruneOnce(ctx context.Context, o PruneOptions) (*Result, error) {
	ring, err := s.Ring(ctx)
	if err != nil {
		return nil, err
	}
	orphans, err := s.orphans(ctx, ring)
	if err != nil {
		return nil, err
	}
	if len(prunable(ring, s.now())) == 0 && len(orphans) == 0 {
		res := s.finish(&change{res: Result{Current: ring.CurrentKey().Kid}}, "prune", o.DryRun)
		res.Generation = ring.Generation
		if k := ring.NextKey(); k != nil {
			res.Next = k.Kid
		}
		return res, nil
	}
	return s.update(ctx, "prune", o.DryRun, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring == nil {
			return nil, &NoRingError{Path: s.o.Path}
		}
		drop := prunable(snap.Ring, now)
		var orphans []string
		for kid := range snap.private {
			if k := snap.Ring.Find(kid); k == nil || k.State == Retired {
				orphans = append(orphans, kid)
			}
		}
		if len(drop) == 0 && len(orphans) == 0 {
			return &change{res: Result{Current: snap.Ring.CurrentKey().Kid}}, nil
		}
		slices.Sort(orphans)
		ring := snap.Ring.clone()
		ch := &change{ring: ring}
		ring.Keys = slices.DeleteFunc(ring.Keys, func(k Key) bool { return slices.Contains(drop, k.Kid) })
		for _, kid := range append(drop, orphans...) {
			if _, ok := snap.private[kid]; ok && !slices.Contains(ch.deleted, kid) {
				ch.deleted = append(ch.deleted, kid)
			}
		}
		ch.res.Pruned = drop
		return ch, nil
	})
}

// orphans lists private keys stored for kids the ring no longer has, or
// has as retired: left behind when a change had more to delete than one
// transaction holds. It reads the kids only, not the keys.
func (s *Store) orphans(ctx context.Context, ring *Ring) ([]string, error) {
	kids, err := s.kv.KVKeys(ctx, s.PrivateKey(""))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, key := range kids {
		kid := strings.TrimPrefix(key, s.PrivateKey(""))
		if k := ring.Find(kid); k == nil || k.State == Retired {
			out = append(out, kid)
		}
	}
	return out, nil
}

func prunable(r *Ring, now time.Time) []string {
	var out []string
	for _, k := range r.Keys {
		if k.State == Retired || (k.State == Previous && !k.Verifiable(now)) {
			out = append(out, k.Kid)
		}
	}
	slices.Sort(out)
	return out
}

// RecordTTL raises the ring's record of the longest token lifetime issued,
// so that later rotations keep keys verifiable long enough. It writes (and
// locks) only when ttl is longer than what the ring already covers.
func (s *Store) RecordTTL(ctx context.Context, ttl time.Duration) (bool, error) {
	ring, err := s.Ring(ctx)
	if err != nil {
		return false, err
	}
	if SecondsOf(ttl) <= max(ring.MaxTokenTTL, ring.IssuedMaxTTL) {
		return false, nil
	}
	_, err = s.update(ctx, "record-ttl", false, func(snap *Snapshot, now time.Time) (*change, error) {
		if snap.Ring == nil {
			return nil, &NoRingError{Path: s.o.Path}
		}
		if SecondsOf(ttl) <= max(snap.Ring.MaxTokenTTL, snap.Ring.IssuedMaxTTL) {
			return nil, nil
		}
		ring := snap.Ring.clone()
		ring.IssuedMaxTTL = SecondsOf(ttl)
		return &change{ring: ring}, nil
	})
	return err == nil, err
}

func ptr[T any](v T) *T { return &v }
