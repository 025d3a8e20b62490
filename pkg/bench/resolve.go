package bench

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/hashicorp/consul/api"
)

// HealthService is the one Consul call ResolveService needs
// ((*api.Health).Service); tests pass a fake.
type HealthService interface {
	Service(service, tag string, passingOnly bool, q *api.QueryOptions) ([]*api.ServiceEntry, *api.QueryMeta, error)
}

// NoInstancesError means Consul knows no passing instance of a service.
type NoInstancesError struct {
	Service string
}

func (e *NoInstancesError) Error() string {
	return fmt.Sprintf("service %q has no passing instance in Consul", e.Service)
}

// Hint says what to do about it.
func (e *NoInstancesError) Hint() string {
	return "check the name and the instances' health checks: microctl health, or consul catalog services"
}

// ResolveService returns host:port of every passing instance of service,
// sorted, as the go-micro selector sees them: an instance with any
// critical or warning check is left out. The service address wins over
// the node address when set (go-micro registers the container's own).
func ResolveService(ctx context.Context, h HealthService, service string) ([]string, error) {
	entries, _, err := h.Service(service, "", true, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var addrs []string
	for _, e := range entries {
		if e.Service == nil || e.Service.Port == 0 {
			continue
		}
		host := e.Service.Address
		if host == "" && e.Node != nil {
			host = e.Node.Address
		}
		if host == "" {
			continue
		}
		a := net.JoinHostPort(host, strconv.Itoa(e.Service.Port))
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, &NoInstancesError{Service: service}
	}
	sort.Strings(addrs)
	return addrs, nil
}
