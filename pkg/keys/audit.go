package keys

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// AuditEntry is one audit record under microctl/audit/<path>/, as `key log`
// shows it.
type AuditEntry struct {
	Key string `json:"key"`
	auditFields
	// Unreadable is set for a value that is not an audit record; the
	// entry is listed anyway, so nothing under the prefix goes unseen.
	Unreadable string `json:"unreadable,omitempty"`
}

// auditFields are what a write records (auditRecord) and what `key log`
// reads back (AuditEntry): one list, so the two cannot drift apart.
type auditFields struct {
	Op            string    `json:"op"`
	Who           string    `json:"who"`
	TokenAccessor string    `json:"token_accessor,omitempty"`
	At            time.Time `json:"at"`
	Generation    int64     `json:"generation"`
	Current       string    `json:"current"`
	Next          string    `json:"next,omitempty"`
	Added         []string  `json:"added,omitempty"`
	Retired       []string  `json:"retired,omitempty"`
	Revoked       []string  `json:"revoked,omitempty"`
	Pruned        []string  `json:"pruned,omitempty"`
	GraceSeconds  int64     `json:"grace_seconds,omitempty"`
	Forced        bool      `json:"forced,omitempty"`
}

// WithAuditKeep makes every write also delete audit records older than d
// (in the same transaction, as many as it has room for).
func WithAuditKeep(d time.Duration) Option { return func(o *Options) { o.AuditKeep = d } }

// auditTimeFormat starts every audit key, so a listing sorts by time.
const auditTimeFormat = "20060102T150405Z"

// auditList reads the ring's own audit records: the direct children of
// its audit prefix (a ring at a/b must not list a/b/c's, had one been made
// before nested rings were refused).
func (s *Store) auditList(ctx context.Context) ([]registry.KVEntry, error) {
	l, err := s.kv.KVList(ctx, s.AuditPrefix())
	if err != nil {
		return nil, err
	}
	out := l.Entries[:0]
	for _, e := range l.Entries {
		if !strings.Contains(strings.TrimPrefix(e.Key, s.AuditPrefix()), "/") {
			out = append(out, e)
		}
	}
	return out, nil
}

// auditTime is when a record was written: from its key, else its value.
func auditTime(prefix string, e registry.KVEntry, rec *AuditEntry) time.Time {
	name := strings.TrimPrefix(e.Key, prefix)
	if len(name) >= len(auditTimeFormat) {
		if t, err := time.Parse(auditTimeFormat, name[:len(auditTimeFormat)]); err == nil {
			return t
		}
	}
	if rec != nil {
		return rec.At
	}
	return time.Time{}
}

// Log returns the ring's audit records written in the last since (all of
// them when since is 0), oldest first.
func (s *Store) Log(ctx context.Context, since time.Duration) ([]AuditEntry, error) {
	entries, err := s.auditList(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := time.Time{}
	if since > 0 {
		cutoff = s.now().Add(-since)
	}
	out := []AuditEntry{}
	for _, e := range entries {
		var a AuditEntry
		if err := json.Unmarshal(e.Value, &a); err != nil || a.Op == "" {
			a = AuditEntry{Unreadable: "not an audit record"}
		}
		a.Key = e.Key
		if a.At.IsZero() {
			a.At = auditTime(s.AuditPrefix(), e, nil)
		}
		if a.At.Before(cutoff) {
			continue
		}
		out = append(out, a)
	}
	slices.SortStableFunc(out, func(a, b AuditEntry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if a.Generation != b.Generation {
			return int(a.Generation - b.Generation)
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

// stageRetention adds to txn the deletion of audit records older than the
// store's AuditKeep, oldest first, leaving room for the write's own
// record; what does not fit goes with a later write. It returns how many.
func (s *Store) stageRetention(ctx context.Context, txn *registry.Txn, now time.Time) (int, error) {
	if s.o.AuditKeep <= 0 {
		return 0, nil
	}
	entries, err := s.auditList(ctx)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-s.o.AuditKeep)
	n := 0
	for _, e := range entries { // KV lists in key order: oldest first
		if !auditTime(s.AuditPrefix(), e, nil).Before(cutoff) || auditTime(s.AuditPrefix(), e, nil).IsZero() {
			continue
		}
		if txn.Len()+1+auditOps > registry.MaxTxnOps {
			break
		}
		txn.DeleteCAS(e.Key, e.ModifyIndex)
		n++
	}
	return n, nil
}
