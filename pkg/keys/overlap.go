package keys

import (
	"context"
	"fmt"
	"strings"
)

// OverlapError means a new ring would live inside another ring's keys, or
// around them. Two rings whose paths nest share KV prefixes: the outer
// ring's strict read of everything under its path (Load) would meet the
// inner ring's values and refuse every change, so the outer ring could
// never be rotated again. Nothing was written.
type OverlapError struct {
	Path  string // the ring asked for
	Other string // the existing ring
	What  string // "ring" or "legacy path"
}

func (e *OverlapError) Error() string {
	if e.What == "legacy path" {
		return fmt.Sprintf("legacy path %s is inside the key ring at %s; nothing was written", e.Path, e.Other)
	}
	inside := strings.HasPrefix(e.Path+"/", e.Other+"/")
	where := "around"
	if inside {
		where = "inside"
	}
	return fmt.Sprintf("a key ring at %s would be %s the key ring at %s; nothing was written", e.Path, where, e.Other)
}

// Hint says what to do about it.
func (e *OverlapError) Hint() string {
	return "choose a path that neither contains nor is contained in another ring's path, e.g. a sibling such as " + siblingOf(e.Other)
}

func siblingOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i+1] + "jwt-other"
	}
	return p + "-other"
}

// ancestors lists the proper prefixes of a path, by segment, outermost
// first: a/b/c -> a, a/b.
func ancestors(p string) []string {
	parts := strings.Split(p, "/")
	out := make([]string, 0, len(parts)-1)
	for i := 1; i < len(parts); i++ {
		out = append(out, strings.Join(parts[:i], "/"))
	}
	return out
}

// checkOverlap refuses a new ring at the store's path when a ring already
// exists at a path above it (its <ancestor>/ring exists) or below it (a
// <path>/.../ring among the values Load saw), and a legacy path inside any
// ring.
func (s *Store) checkOverlap(ctx context.Context, snap *Snapshot, legacy bool) error {
	for _, a := range ancestors(s.o.Path) {
		e, err := s.kv.KVGet(ctx, a+"/ring")
		if err != nil {
			return err
		}
		if e != nil {
			return &OverlapError{Path: s.o.Path, Other: a, What: "ring"}
		}
	}
	for _, k := range snap.Other {
		if inner, ok := strings.CutSuffix(k, "/ring"); ok {
			return &OverlapError{Path: s.o.Path, Other: inner, What: "ring"}
		}
	}
	if legacy {
		for _, a := range ancestors(s.o.LegacyPath) {
			e, err := s.kv.KVGet(ctx, a+"/ring")
			if err != nil {
				return err
			}
			if e != nil {
				return &OverlapError{Path: s.o.LegacyPath, Other: a, What: "legacy path"}
			}
		}
	}
	return nil
}
