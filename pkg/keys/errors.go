package keys

import (
	"encoding/json"
	"fmt"
	"time"
)

// NoRingError means there is no ring at the path yet.
type NoRingError struct{ Path string }

func (e *NoRingError) Error() string { return "no key ring at " + e.Path }

// Hint says what to do about it.
func (e *NoRingError) Hint() string {
	return "create one with: microctl key init --path " + e.Path
}

// RingExistsError means init found a ring already there.
type RingExistsError struct {
	Path    string
	Current string
}

func (e *RingExistsError) Error() string {
	return fmt.Sprintf("a key ring already exists at %s (current key %s)", e.Path, e.Current)
}

// Hint says what to do about it.
func (e *RingExistsError) Hint() string {
	return "rotate it with microctl key rotate, or inspect it with microctl key show"
}

// CorruptError means a value under the ring's path is not what microctl
// wrote there. Nothing was changed.
type CorruptError struct {
	Key string
	Err error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("KV %s: %v; nothing was changed", e.Key, e.Err)
}
func (e *CorruptError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *CorruptError) Hint() string {
	return "inspect it with consul kv get " + e.Key + "; every value under the ring's path must be a JSON object microctl wrote, or go-config fails the whole read"
}

// BusyError means another operator held the ring's lock for all of the wait.
type BusyError struct {
	LockKey string
	Holder  Holder
}

// Holder is what a lock holder writes in the lock key.
type Holder struct {
	Op    string    `json:"op"`
	Who   string    `json:"who"`
	Since time.Time `json:"since"`
}

func (e *BusyError) Error() string {
	who := "another operator"
	if e.Holder.Who != "" {
		who = fmt.Sprintf("%s (%s since %s)", e.Holder.Who, e.Holder.Op, e.Holder.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("another key operation is in progress: %s holds %s; nothing was written", who, e.LockKey)
}

// Hint says what to do about it.
func (e *BusyError) Hint() string { return "wait for it to finish or raise --wait" }

func parseHolder(b []byte) Holder {
	var h Holder
	_ = json.Unmarshal(b, &h)
	return h
}

// LostRaceError means the transaction was rolled back: another writer
// changed the ring, or this one lost its lock, between the read and the
// write. Nothing was written.
type LostRaceError struct {
	Op  string
	Err error
}

func (e *LostRaceError) Error() string {
	what := "key ring change"
	if e.Op == "rotate" {
		what = "rotation"
	}
	return fmt.Sprintf("another %s won; nothing was written", what)
}
func (e *LostRaceError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *LostRaceError) Hint() string {
	return "see what the ring is now with microctl key show, then run the command again if it is still needed"
}

// GraceTooShortError means a rotation would retire a key before tokens it
// signed expire.
type GraceTooShortError struct {
	Grace    time.Duration
	Required time.Duration
	Why      string
}

func (e *GraceTooShortError) Error() string {
	return fmt.Sprintf("--grace %s is shorter than %s (%s): tokens the current key signed would be rejected before they expire",
		e.Grace, e.Required, e.Why)
}

// Hint says what to do about it.
func (e *GraceTooShortError) Hint() string {
	return fmt.Sprintf("use --grace %s or more, or --force to accept breaking those tokens", e.Required)
}

// ReadBackError means the write went through but reading it back did not
// show what was written. It should never happen; when it does, a person
// must look.
type ReadBackError struct {
	Path string
	Err  error
}

func (e *ReadBackError) Error() string {
	return fmt.Sprintf("the ring at %s was written but reading it back failed: %v", e.Path, e.Err)
}
func (e *ReadBackError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *ReadBackError) Hint() string { return "check it with microctl key show and microctl doctor" }

// PolicyError is a refusal by Consul's ACLs that is not about one KV path
// (creating the lock's session): its hint spells out the whole policy an
// operator's token needs to change the ring.
type PolicyError struct {
	Path string
	Err  error
}

func (e *PolicyError) Error() string { return e.Err.Error() }
func (e *PolicyError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *PolicyError) Hint() string { return "the token needs " + WritePolicy(e.Path) }

// WritePolicy is the ACL policy, on one line, that lets a token change the
// ring at path: the ring itself, its lock and audit records, and sessions.
func WritePolicy(path string) string {
	return fmt.Sprintf(`key_prefix %q { policy = "write" } key_prefix %q { policy = "write" } key_prefix %q { policy = "write" } session_prefix "" { policy = "write" }`,
		path+"/", LockPrefix+path, AuditPrefix+path+"/")
}

// AlgError refuses an algorithm the ring cannot take (HS256 in a JWKS ring,
// anything but HS256 in a legacy ring). It is the caller's mistake, not a
// failure: microctl maps it to a usage error (exit 2).
type AlgError struct{ Err error }

func (e *AlgError) Error() string { return e.Err.Error() }
func (e *AlgError) Unwrap() error { return e.Err }
