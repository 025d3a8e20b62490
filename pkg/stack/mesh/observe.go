package mesh

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

// FromRegistry turns Consul's view of a service's instances (with their
// nodes, whose checks count too) into the gate's instances.
func FromRegistry(ins []registry.ServiceInstance, nodes []registry.Node) []Instance {
	nodeChecks := map[string][]registry.Check{}
	for _, n := range nodes {
		nodeChecks[n.Name] = n.Checks
	}
	out := make([]Instance, 0, len(ins))
	for _, in := range ins {
		checks := append(slices.Clone(in.Checks), nodeChecks[in.Node]...)
		var index uint64
		for _, c := range checks {
			index = max(index, c.ModifyIndex)
		}
		var ttl time.Duration
		if v := in.Meta[registry.MetaRegisterTTL]; v != "" {
			// microctl's examples write a Go duration ("15s"); go-micro's
			// flags count seconds.
			d, err := time.ParseDuration(v)
			if err != nil {
				d, err = registry.ParseSeconds(v)
			}
			if err == nil && d > 0 {
				ttl = d
			}
		}
		out = append(out, Instance{ID: in.ID, Node: in.Node, Address: in.DialAddress(), Port: in.Port,
			Status: Aggregate(checks), CheckIndex: index, CreateIndex: in.CreateIndex, TTL: ttl})
	}
	return out
}

// Aggregate is the status Consul's health endpoint would give an instance
// with these checks: the worst of them, passing with none.
func Aggregate(checks []registry.Check) string {
	status := Passing
	for _, c := range checks {
		switch c.Status {
		case Critical:
			return Critical
		case Passing:
		default:
			// warning, and anything unknown, is not passing.
			status = Warning
		}
	}
	return status
}

// consulOwnService is the name Consul registers its servers under.
const consulOwnService = "consul"

// Inference is the outcome of Infer.
type Inference struct {
	// Service is the Consul name, "" when none was found.
	Service string
	// Matched is how many task addresses carry an instance of it.
	Matched int
	// Ambiguous lists the names when the tasks' addresses carry
	// instances of more than one service: no name is inferred then.
	Ambiguous []string
}

// Infer finds the Consul service a Swarm service's tasks register as, the
// way go-micro does by default: every instance at one of the running
// tasks' addresses belongs to one service name. catalog is every instance
// of the datacenter (registry.Catalog.Instances).
//
// Consul's own service (consul: one instance per server, registered by
// Consul itself, with the ID "consul" on every node) is never inferred: it
// is no application, and with a server per node (examples/cluster) its
// instances would be counted as each other's orphans and tracked under one
// colliding ID, so the gate never settled.
func Infer(taskAddrs []string, catalog []registry.ServiceInstance) Inference {
	addrs := map[string]bool{}
	for _, a := range taskAddrs {
		addrs[a] = true
	}
	count := map[string]int{}
	for _, in := range catalog {
		if addrs[in.DialAddress()] && in.Service != consulOwnService {
			count[in.Service]++
		}
	}
	switch len(count) {
	case 0:
		return Inference{}
	case 1:
		for name, n := range count {
			return Inference{Service: name, Matched: n}
		}
	}
	var names []string
	for name := range count {
		names = append(names, name)
	}
	slices.Sort(names)
	return Inference{Ambiguous: names}
}

// String says what was inferred, for a progress line or a warning.
func (i Inference) String() string {
	switch {
	case i.Service != "":
		return fmt.Sprintf("registers as %s in Consul (inferred: %d instance(s) at its tasks' addresses)", i.Service, i.Matched)
	case len(i.Ambiguous) > 0:
		return fmt.Sprintf("its tasks' addresses carry instances of several Consul services (%s): not gated; declare one with the deploy label %s", strings.Join(i.Ambiguous, ", "), Label)
	}
	return "no instance at its tasks' addresses in Consul: not a mesh service"
}
