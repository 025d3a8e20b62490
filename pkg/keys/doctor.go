package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/microctl/microctl/pkg/doctor"
	"github.com/microctl/microctl/pkg/registry"
)

// Probe checks the ring at the store's path:
//
//	keys.ring  the ring reads, every value under the path is a JSON object
//	           microctl can use, nothing is left to prune
//	keys.age   the current key is younger than the ring's rotation period
//	keys.next  a next key is published in the JWKS for the next rotation
//
// No ring at the path is a skip, not a failure: not every deployment
// signs tokens.
func Probe(s *Store) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		return probe(ctx, s, s.now())
	}
}

func probe(ctx context.Context, s *Store, now time.Time) []doctor.Result {
	ring, err := s.Ring(ctx)
	if err != nil {
		var none *NoRingError
		if errors.As(err, &none) {
			return doctor.Skipped(fmt.Sprintf("no key ring at %s (microctl key init)", s.Path()), "keys.ring", "keys.age", "keys.next")
		}
		// An unreachable Consul is consul.agent's failure; saying it again
		// here would count one fault twice.
		var unreachable *registry.UnreachableError
		if errors.As(err, &unreachable) {
			return doctor.Skipped("Consul unreachable", "keys.ring", "keys.age", "keys.next")
		}
		return append([]doctor.Result{{Check: "keys.ring", Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)}},
			doctor.Skipped("the ring cannot be read", "keys.age", "keys.next")...)
	}
	out := make([]doctor.Result, 0, 3)
	// The full load also proves go-config can read the prefix; a token
	// that may not read private keys gets the public checks only.
	ringRes := doctor.Result{Check: "keys.ring", Status: doctor.OK,
		Detail: fmt.Sprintf("ring at %s: %d keys, generation %d, alg %s", s.Path(), len(ring.Keys), ring.Generation, ring.Alg)}
	if _, err := s.Load(ctx); err != nil {
		var corrupt *CorruptError
		if errors.As(err, &corrupt) {
			ringRes = doctor.Result{Check: "keys.ring", Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)}
		}
	}
	if h, _ := s.Health(ctx, ring); h.Broken != "" && ringRes.Status == doctor.OK {
		e := &BrokenError{Path: s.Path(), Kid: h.Broken, Key: s.PrivateKey(h.Broken)}
		ringRes = doctor.Result{Check: "keys.ring", Status: doctor.Fail, Detail: e.Error(), Hint: e.Hint()}
	}
	if n := len(prunable(ring, now)); n > 0 && ringRes.Status == doctor.OK {
		ringRes.Status = doctor.Warn
		ringRes.Detail += fmt.Sprintf("; %d keys past retire_after", n)
		ringRes.Hint = "microctl key prune"
	}
	out = append(out, ringRes)

	cur := ring.CurrentKey()
	age := now.Sub(*cur.ActivatedAt)
	period := ring.RotationPeriod.Duration()
	ageRes := doctor.Result{Check: "keys.age", Status: doctor.OK,
		Detail: fmt.Sprintf("current key %s is %s old (rotation period %s)", short(cur.Kid), HumanDuration(age), HumanDuration(period))}
	if period > 0 && age > period {
		ageRes.Status = doctor.Warn
		ageRes.Hint = "rotate it: microctl key rotate"
	}
	out = append(out, ageRes)

	next := ring.NextKey()
	nextRes := doctor.Result{Check: "keys.next", Status: doctor.OK}
	switch {
	case next == nil:
		nextRes.Status, nextRes.Detail = doctor.Warn, "no next key: the next rotation would sign with a key no verifier has seen"
		nextRes.Hint = "microctl key rotate publishes one"
	default:
		doc, err := s.JWKSDoc(ctx)
		var ks *KeySet
		if err == nil {
			ks, err = ParseJWKS(doc)
		}
		switch {
		case err != nil:
			nextRes.Status, nextRes.Detail, nextRes.Hint = doctor.Fail, err.Error(), doctor.HintOf(err)
		case !next.Alg.Symmetric() && !ks.Has(next.Kid):
			nextRes.Status, nextRes.Detail = doctor.Fail, fmt.Sprintf("next key %s is not in the JWKS at %s", short(next.Kid), s.JWKSKey())
			nextRes.Hint = "microctl key rotate rewrites the JWKS"
		default:
			nextRes.Detail = fmt.Sprintf("next key %s published %s ago", short(next.Kid), HumanDuration(now.Sub(next.CreatedAt)))
		}
	}
	out = append(out, nextRes)
	if ring.LegacyPath != "" {
		out = append(out, legacyResult(ctx, s, ring))
	}
	return append(out, productionChecks(ctx, s, ring, now)...)
}

// legacyResult is keys.legacy, only for rings in legacy mode: the secret
// at the legacy path is the current key and reaches go-config readers (the
// seed's gateway) intact.
func legacyResult(ctx context.Context, s *Store, ring *Ring) doctor.Result {
	res := doctor.Result{Check: "keys.legacy", Status: doctor.OK}
	st, err := s.LegacyStatus(ctx, ring)
	switch {
	case err != nil:
		res.Status, res.Detail, res.Hint = doctor.Warn, fmt.Sprintf("%s cannot be read: %v", ring.LegacyPath, err), doctor.HintOf(err)
	case !st.Safe || !st.Present:
		res.Status, res.Detail = doctor.Fail, fmt.Sprintf("%s: %s", st.Path, st.Problem)
		res.Hint = "microctl key rotate writes a fresh, safe secret"
	case !st.Matches:
		res.Status, res.Detail = doctor.Fail, fmt.Sprintf("%s does not hold the ring's current key %s", st.Path, short(ring.CurrentKey().Kid))
		res.Hint = "microctl key rotate writes the current secret again"
	default:
		res.Detail = fmt.Sprintf("%s holds the current key %s, and go-config reads it intact", st.Path, short(ring.CurrentKey().Kid))
	}
	return res
}

// short abbreviates a kid for one-line details.
func short(kid string) string {
	if len(kid) > 12 {
		return kid[:12]
	}
	return kid
}

// HumanDuration prints d the way a person reads an age: 3d4h, 5h2m, 40s.
func HumanDuration(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	d = d.Round(time.Second)
	var s string
	switch {
	case d >= 24*time.Hour:
		s = fmt.Sprintf("%dd%dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
	case d >= time.Hour:
		s = fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		s = fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	default:
		s = fmt.Sprintf("%ds", d/time.Second)
	}
	if neg {
		return "-" + s
	}
	return s
}

// Doctor is what this package offers `microctl doctor`: the key ring
// checks, on the store built from the lazy Consul client and the ring path
// (MICROCTL_KEY_PATH or the default when path is ""). Without a client the
// checks are skipped; consul.agent already says why.
func Doctor(consul func() (*registry.Client, error), path string) []doctor.Descriptor {
	names := []string{"keys.ring", "keys.age", "keys.next"}
	return []doctor.Descriptor{
		doctor.Lazy(names, consul, doctor.SkipAll("no Consul client"), func(c *registry.Client) doctor.Probe {
			return storeProbe(c, path, names)
		}),
	}
}

func storeProbe(c *registry.Client, path string, names []string) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		if path == "" {
			path = PathFromEnv()
		}
		opts := []Option{}
		if path != "" {
			opts = append(opts, WithPath(path))
		}
		s, err := NewStore(c, opts...)
		if err != nil {
			return append([]doctor.Result{{Check: "keys.ring", Status: doctor.Fail, Detail: err.Error()}}, doctor.Skipped("bad ring path", names[1:]...)...)
		}
		return Probe(s)(ctx)
	}
}
