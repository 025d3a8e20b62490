package node

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// Consul is the production ConsulAPI on a registry client. Maintenance is
// an agent endpoint: Consul accepts it only on the agent the instance is
// registered with, so for an instance of another agent it dials that
// agent's address on the same port, scheme and token.
type Consul struct {
	C      *registry.Client
	Config *api.Config // the configuration C was built from
}

// Catalog implements ConsulAPI.
func (c Consul) Catalog(ctx context.Context) (*registry.Catalog, error) { return c.C.Catalog(ctx) }

// SetMaintenance implements ConsulAPI.
func (c Consul) SetMaintenance(ctx context.Context, agentNode, agentAddr, serviceID string, enable bool, reason string) error {
	client := c.C
	self, err := c.C.Agent(ctx)
	if err != nil {
		return err
	}
	if agentNode != self.NodeName {
		if agentAddr == "" || c.Config == nil {
			return fmt.Errorf("instance %s is registered with agent %s, whose address is unknown", serviceID, agentNode)
		}
		cfg := *c.Config
		_, port, err := net.SplitHostPort(strings.TrimPrefix(strings.TrimPrefix(c.C.Addr, "http://"), "https://"))
		if err != nil {
			port = "8500"
		}
		cfg.Address = net.JoinHostPort(agentAddr, port)
		if client, err = registry.NewClient(&cfg); err != nil {
			return err
		}
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	if enable {
		err = client.API.Agent().EnableServiceMaintenanceOpts(serviceID, reason, q)
	} else {
		err = client.API.Agent().DisableServiceMaintenanceOpts(serviceID, q)
	}
	if err != nil {
		if strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "Unknown service") {
			return fmt.Errorf("%s on agent %s: %w", serviceID, agentNode, ErrInstanceGone)
		}
		return client.Err(err)
	}
	return nil
}
