package doctor

import "context"

// Descriptor is what a package offers `microctl doctor`: the checks it
// reports, in the order it reports them, and the probe that runs them. Each
// package that knows a subsystem builds its own descriptors (swarm.Doctor,
// registry.Doctor, ...) from the lazy clients it needs, so adding a check
// never means wiring it by hand in cmd/doctor, which only runs and renders.
type Descriptor struct {
	// Checks are the names reported when the probe cannot run at all (its
	// client could not be built). Once it runs, a probe may report more
	// (keys adds its production checks only when there is a ring).
	Checks []string
	Probe  Probe
}

// Missing turns the error of a client that could not be built into the
// results of the checks that needed it.
type Missing func(checks []string, err error) []Result

// FailFirst reports a client that cannot be built (a malformed address, a
// token file that does not exist) as the failure of the first check, with
// the error's hint, and skips the others: the first check is the one that
// would have found the client unusable anyway (docker.engine, consul.agent).
func FailFirst(checks []string, err error) []Result {
	if len(checks) == 0 {
		return nil
	}
	return append([]Result{{Check: checks[0], Status: Fail, Detail: err.Error(), Hint: HintOf(err)}},
		Skipped("no client", checks[1:]...)...)
}

// SkipAll skips every check with reason, for probes whose client failure is
// already reported by another probe's first check (consul.agent says why
// Consul is unusable; registry.* need not say it three more times).
func SkipAll(reason string) Missing {
	return func(checks []string, _ error) []Result { return Skipped(reason, checks...) }
}

// Needs builds a probe that builds its client only when it runs, so a
// doctor run whose Docker host is malformed still checks Consul. When
// client fails, missing says what the checks report instead.
func Needs[C any](checks []string, client func() (C, error), missing Missing, probe func(C) Probe) Probe {
	return func(ctx context.Context) []Result {
		c, err := client()
		if err != nil {
			return missing(checks, err)
		}
		return probe(c)(ctx)
	}
}

// Lazy is Needs wrapped as a Descriptor.
func Lazy[C any](checks []string, client func() (C, error), missing Missing, probe func(C) Probe) Descriptor {
	return Descriptor{Checks: checks, Probe: Needs(checks, client, missing, probe)}
}
