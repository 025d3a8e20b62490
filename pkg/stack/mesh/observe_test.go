package mesh

import (
	"slices"
	"testing"
	"time"

	"github.com/microctl/microctl/pkg/registry"
)

func TestFromRegistry(t *testing.T) {
	ins := []registry.ServiceInstance{
		{ID: "a", Node: "n1", NodeAddress: "10.0.0.1", Address: "10.0.1.5", Port: 8080, CreateIndex: 4,
			Meta:   map[string]string{registry.MetaRegisterTTL: "15s"},
			Checks: []registry.Check{{CheckID: "service:a", Status: "passing", ModifyIndex: 7}}},
		{ID: "b", Node: "n2", NodeAddress: "10.0.0.2", Port: 8080, Meta: map[string]string{registry.MetaRegisterTTL: "20"},
			Checks: []registry.Check{{CheckID: "service:b", Status: "passing", ModifyIndex: 3}}},
		{ID: "c", Node: "n1", Address: "10.0.1.6", Meta: map[string]string{registry.MetaRegisterTTL: "soon"},
			Checks: []registry.Check{{CheckID: "service:c", Status: "warning", ModifyIndex: 2}}},
	}
	nodes := []registry.Node{
		{Name: "n1", Checks: []registry.Check{{CheckID: "serfHealth", Status: "passing", ModifyIndex: 9}}},
		{Name: "n2", Checks: []registry.Check{{CheckID: "serfHealth", Status: "critical", ModifyIndex: 11}}},
	}
	got := FromRegistry(ins, nodes)
	want := []Instance{
		{ID: "a", Node: "n1", Address: "10.0.1.5", Port: 8080, Status: Passing, CheckIndex: 9, CreateIndex: 4, TTL: 15 * time.Second},
		// The node's critical serfHealth makes the instance critical, and
		// an instance without its own address is dialled at its node's.
		{ID: "b", Node: "n2", Address: "10.0.0.2", Port: 8080, Status: Critical, CheckIndex: 11, TTL: 20 * time.Second},
		{ID: "c", Node: "n1", Address: "10.0.1.6", Status: Warning, CheckIndex: 9},
	}
	if !slices.Equal(got, want) {
		t.Errorf("FromRegistry:\n got %+v\nwant %+v", got, want)
	}
}

func TestAggregate(t *testing.T) {
	tests := []struct {
		statuses []string
		want     string
	}{
		{nil, Passing},
		{[]string{"passing", "passing"}, Passing},
		{[]string{"passing", "warning"}, Warning},
		{[]string{"warning", "critical", "passing"}, Critical},
		{[]string{"maintenance?"}, Warning},
	}
	for _, tt := range tests {
		var cs []registry.Check
		for _, s := range tt.statuses {
			cs = append(cs, registry.Check{Status: s})
		}
		if got := Aggregate(cs); got != tt.want {
			t.Errorf("Aggregate(%v) = %s, want %s", tt.statuses, got, tt.want)
		}
	}
}

func TestInfer(t *testing.T) {
	catalog := []registry.ServiceInstance{
		{ID: "g1", Service: "go.micro.srv.greeter", Address: "10.0.1.5"},
		{ID: "g2", Service: "go.micro.srv.greeter", Address: "10.0.1.6"},
		{ID: "api", Service: "go.micro.api", Address: "10.0.1.9"},
		{ID: "consul", Service: "consul", NodeAddress: "10.0.1.2"},
		{ID: "kv", Service: "kvstore", NodeAddress: "10.0.1.3"},
		{ID: "consul", Service: "consul", Address: "10.0.1.4"},
	}
	tests := []struct {
		name  string
		addrs []string
		want  Inference
	}{
		{"one service at the tasks' addresses", []string{"10.0.1.5", "10.0.1.6", "10.0.1.7"}, Inference{Service: "go.micro.srv.greeter", Matched: 2}},
		{"nothing registered there", []string{"10.0.1.99"}, Inference{}},
		{"a node address counts when the instance has none", []string{"10.0.1.3"}, Inference{Service: "kvstore", Matched: 1}},
		{"Consul's own service is never inferred", []string{"10.0.1.2", "10.0.1.4"}, Inference{}},
		{"two names: ambiguous, nothing inferred", []string{"10.0.1.5", "10.0.1.9"}, Inference{Ambiguous: []string{"go.micro.api", "go.micro.srv.greeter"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Infer(tt.addrs, catalog)
			if got.Service != tt.want.Service || got.Matched != tt.want.Matched || !slices.Equal(got.Ambiguous, tt.want.Ambiguous) {
				t.Errorf("Infer = %+v, want %+v", got, tt.want)
			}
			if got.String() == "" {
				t.Error("empty description")
			}
		})
	}
}
