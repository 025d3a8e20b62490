// Package stack deploys a compose project to a Swarm as a stack and looks
// after it: plan, apply, converge, rollback, remove, scale. Prepare is the
// one entry point of a deploy and owns the call order (load the files, ask
// the engine once for its role, convert, plan); Deploy applies the plan.
// Progress is reported through the Reporter callback: this package never
// prints, and the rendering (escape codes included) lives in cmd/stack.
package stack
