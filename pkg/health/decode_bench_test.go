package health

import (
	"fmt"
	"testing"

	"github.com/microctl/microctl/pkg/registry"
)

// BenchmarkBuild2000 builds 2,000 instances of 500 services, each service
// with its own version and endpoint, as a real catalog would have.
func BenchmarkBuild2000(b *testing.B) {
	cat := &registry.Catalog{Nodes: []registry.Node{{Name: "n1", Address: "10.0.0.1"}}}
	for i := range 2000 {
		in := registry.Instance{Name: fmt.Sprintf("bench.svc.%03d", i/4), Version: fmt.Sprintf("1.0.%d", i/4), ID: fmt.Sprint(i), Address: "10.0.1.5", Port: 1,
			Metadata:  map[string]string{"transport": "http", "broker": "http", "server": "http", "registry": "consul", "protocol": "mucp"},
			Endpoints: []registry.Endpoint{{Name: fmt.Sprintf("Svc%03d.Call", i/4), Request: &registry.Value{Name: "Request", Type: "Request"}}}}
		reg := in.Registration()
		cat.Instances = append(cat.Instances, registry.ServiceInstance{ID: reg.ID, Service: reg.Name, Node: "n1", Tags: reg.Tags, Meta: reg.Meta,
			Checks: []registry.Check{{Node: "n1", CheckID: "service:" + reg.ID, ServiceID: reg.ID, Status: "passing", Type: "ttl"}}})
	}
	for b.Loop() {
		Build(cat, Options{})
	}
}
