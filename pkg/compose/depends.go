package compose

import (
	"fmt"
	"sort"
	"strings"
)

// CycleError is a depends_on cycle; Path starts and ends with the same
// service.
type CycleError struct{ Path []string }

func (e *CycleError) Error() string {
	return "depends_on cycle: " + strings.Join(e.Path, " -> ")
}

// Hint says what to do about it.
func (e *CycleError) Hint() string { return "remove one of the depends_on entries in the cycle" }

// Order returns the services' names in an order where every service comes
// after what it depends on (ties broken by name, so the order is stable),
// or a CycleError naming a cycle.
func Order(services []Service) ([]string, error) {
	deps := map[string][]string{}
	for _, s := range services {
		for _, d := range s.DependsOn {
			deps[s.Name] = append(deps[s.Name], d.Service)
		}
		sort.Strings(deps[s.Name])
	}
	names := make([]string, 0, len(services))
	for _, s := range services {
		names = append(names, s.Name)
	}
	sort.Strings(names)

	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var order, stack []string
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case done:
			return nil
		case visiting:
			i := len(stack) - 1
			for stack[i] != n {
				i--
			}
			return &CycleError{Path: append(append([]string{}, stack[i:]...), n)}
		}
		state[n] = visiting
		stack = append(stack, n)
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// checkDependencies refuses depends_on entries that name a service the
// stack does not have (compose-go catches most; a profile can hide one).
func checkDependencies(services []Service) error {
	have := map[string]bool{}
	for _, s := range services {
		have[s.Name] = true
	}
	for _, s := range services {
		for _, d := range s.DependsOn {
			if !have[d.Service] {
				return fmt.Errorf("service %s depends on %s, which is not in the stack (is it in a disabled profile?)", s.Name, d.Service)
			}
		}
	}
	return nil
}
