package call

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// UnknownEndpointError: the service registers endpoints, not this one.
type UnknownEndpointError struct {
	Service    string
	Endpoint   string
	Suggestion string
	Known      []string
}

func (e *UnknownEndpointError) Error() string {
	msg := fmt.Sprintf("%s registers no endpoint %q", e.Service, e.Endpoint)
	if e.Suggestion != "" {
		msg += "; did you mean " + e.Suggestion + "?"
	}
	return msg
}

// Hint lists what it does register.
func (e *UnknownEndpointError) Hint() string {
	const most = 8
	names := e.Known
	more := ""
	if len(names) > most {
		names, more = names[:most], fmt.Sprintf(", and %d more", len(e.Known)-most)
	}
	return "it registers " + strings.Join(names, ", ") + more
}

// UnknownInstanceError: --instance names no instance of the service.
type UnknownInstanceError struct {
	Service    string
	ID         string
	Suggestion string
}

func (e *UnknownInstanceError) Error() string {
	msg := fmt.Sprintf("%s has no instance %q", e.Service, e.ID)
	if e.Suggestion != "" {
		msg += "; did you mean " + e.Suggestion + "?"
	}
	return msg
}

// Hint says where the IDs are.
func (e *UnknownInstanceError) Hint() string {
	return "microctl registry get " + e.Service + " lists its instances"
}

// NoPassingError: the service exists but no instance passes its checks.
type NoPassingError struct {
	Service   string
	Instances int
	ByStatus  map[string]int
}

func (e *NoPassingError) Error() string {
	var parts []string
	for _, st := range slices.Sorted(maps.Keys(e.ByStatus)) {
		parts = append(parts, fmt.Sprintf("%d %s", e.ByStatus[st], st))
	}
	return fmt.Sprintf("no passing instance of %s: %d instance(s), %s", e.Service, e.Instances, strings.Join(parts, ", "))
}

// Hint says how to look closer or call one anyway.
func (e *NoPassingError) Hint() string {
	return "microctl health " + e.Service + " shows why; --instance ID calls one anyway"
}

// BadBodyError: the request body is not JSON.
type BadBodyError struct{}

func (e *BadBodyError) Error() string { return "the request body is not valid JSON" }
