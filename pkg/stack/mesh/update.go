package mesh

import (
	"cmp"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// GatedUpdate returns the update config a mesh service is deployed with,
// and warnings for settings of the file's that make gating impossible.
//
// The gate can only stop a bad version before it takes all capacity if
// Swarm replaces one task at a time, starts the new one before stopping the
// old, and waits between tasks long enough for the gate to judge the one
// it just started: a new task has the healthy deadline to register and
// pass, so the delay between tasks is the healthy deadline. Fields the
// file leaves open (zero) are set so; fields it sets are kept, with a
// warning when they defeat the gate. file is nil when the file has no
// update_config.
func GatedUpdate(file *swarm.UpdateConfig, deadline time.Duration) (swarm.UpdateConfig, []string) {
	var u swarm.UpdateConfig
	if file != nil {
		u = *file
	} else {
		u.Parallelism = 1
	}
	var warns []string
	switch {
	case u.Parallelism == 0:
		warns = append(warns, "update_config.parallelism 0 replaces every task at once: a bad version takes all capacity before the gate can react")
	case u.Parallelism > 1:
		warns = append(warns, fmt.Sprintf("update_config.parallelism %d: a bad version replaces %d tasks at a time before the gate can react", u.Parallelism, u.Parallelism))
	}
	switch u.Order {
	case "":
		u.Order = swarm.UpdateOrderStartFirst
	case swarm.UpdateOrderStopFirst:
		warns = append(warns, "update_config.order stop-first: each replaced task is out of the registry before its successor passes")
	}
	switch {
	case u.Delay == 0:
		u.Delay = deadline
	case u.Delay < deadline:
		warns = append(warns, fmt.Sprintf("update_config.delay %s is shorter than the healthy deadline %s: Swarm may replace the next task before the gate has judged the previous one", u.Delay, deadline))
	}
	if u.Monitor == 0 {
		u.Monitor = deadline
	}
	if u.FailureAction == "" {
		// Swarm stops and leaves the decision to microctl, which rolls
		// back with --rollback-on-failure.
		u.FailureAction = swarm.UpdateFailureActionPause
	}
	return u, warns
}

// GatedRollback returns the rollback config of a mesh service and warnings,
// given its effective update config. A rollback is what the gate asks for
// when a version fails: it must not take the instances still serving out
// of the registry before the previous version's are back. When the file
// leaves the order open, the rollback goes in the update's order: start-
// first for a service updated start-first (Swarm's default, stop-first,
// with the example's parallelism 0 stopped every greeter at once: measured
// on the demo stack, no instance was registered for 25 s), stop-first for
// one that must be (a host-mode port cannot be held twice on one node).
// Parallelism and the rest stay the file's: a fast rollback is its choice.
// file is nil when the file has no rollback_config.
func GatedRollback(file *swarm.UpdateConfig, update swarm.UpdateConfig) (swarm.UpdateConfig, []string) {
	var r swarm.UpdateConfig
	if file != nil {
		r = *file
	} else {
		r.Parallelism = 1
	}
	var warns []string
	switch {
	case r.Order == "":
		r.Order = cmp.Or(update.Order, swarm.UpdateOrderStopFirst)
	case r.Order == swarm.UpdateOrderStopFirst && update.Order == swarm.UpdateOrderStartFirst:
		warns = append(warns, "rollback_config.order stop-first: a rollback stops instances that still serve before the previous version's are registered")
	}
	if r.FailureAction == "" {
		r.FailureAction = swarm.UpdateFailureActionPause
	}
	return r, warns
}

// DescribeUpdate is the one-line form of an update config a plan shows.
func DescribeUpdate(u *swarm.UpdateConfig) string {
	if u == nil {
		return "Swarm's defaults (parallelism 1, stop-first, delay 0s, monitor 5s, on failure pause)"
	}
	order := u.Order
	if order == "" {
		order = swarm.UpdateOrderStopFirst
	}
	fa := u.FailureAction
	if fa == "" {
		fa = swarm.UpdateFailureActionPause
	}
	mon := u.Monitor
	if mon == 0 {
		mon = 5 * time.Second
	}
	par := fmt.Sprint(u.Parallelism)
	if u.Parallelism == 0 {
		par = "all"
	}
	return fmt.Sprintf("parallelism %s, %s, delay %s, monitor %s, on failure %s", par, order, u.Delay, mon, fa)
}
