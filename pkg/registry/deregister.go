package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/neterr"
)

// A service registered through an agent lives in that agent's local state;
// the catalog is a copy the agent keeps in sync (anti-entropy). Removing it
// from the catalog alone lasts until the agent's next sync, which puts it
// back. So an instance is deregistered through the agent that owns it,
// which is the agent of the catalog node the instance is on, listening at
// the node's address on its HTTP port.

// AgentDialer returns a client for the Consul agent at addr (host:port),
// with the same token and TLS settings as the client the user configured.
type AgentDialer func(addr string) (*Client, error)

// Ownership says where an instance's owning agent is.
type Ownership struct {
	Node      string `json:"node"`
	AgentAddr string `json:"agent_addr"`
	// Local is true when the owning agent is the one microctl talks to.
	Local bool `json:"local"`
}

// AgentUnreachableError means the agent that owns an instance did not
// answer; deregistration through it is impossible.
type AgentUnreachableError struct {
	Node, Addr string
	Err        error
	// NodeCritical is true when the node's serfHealth check is critical:
	// the agent is gone, and nothing will restore a catalog deregistration.
	NodeCritical bool
}

func (e *AgentUnreachableError) Error() string {
	return fmt.Sprintf("the Consul agent of node %s at %s does not answer: %s", e.Node, e.Addr, neterr.Reason(e.Err))
}
func (e *AgentUnreachableError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *AgentUnreachableError) Hint() string {
	h := "pass --agent-port if its HTTP port differs, or --catalog-fallback to deregister from the catalog only"
	if e.NodeCritical {
		return h + " (its serfHealth is critical: the agent looks gone, so nothing will restore the instance)"
	}
	return h + " (anti-entropy will restore the instance if the agent is alive)"
}

// NotOwnedError means the agent at the instance's node does not know the
// instance: it was registered through the catalog API, not an agent, so
// only a catalog deregistration removes it.
type NotOwnedError struct {
	ID, Node, Addr string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("the Consul agent of node %s at %s does not own instance %s (registered through the catalog API?)", e.Node, e.Addr, e.ID)
}

// Hint says what to do about it.
func (e *NotOwnedError) Hint() string {
	return "pass --catalog-fallback to deregister it from the catalog"
}

// OwnerOf works out which agent owns inst: the local agent when the node is
// the local agent's own, else the node's address on agentPort (0: the port
// of the address microctl talks to, 8500 when that has none).
func (c *Client) OwnerOf(ctx context.Context, inst ServiceInstance, agentPort int) (Ownership, error) {
	self, err := c.Agent(ctx)
	if err != nil {
		return Ownership{}, err
	}
	if self.NodeName == inst.Node {
		return Ownership{Node: inst.Node, AgentAddr: c.Addr, Local: true}, nil
	}
	if agentPort == 0 {
		agentPort = portOf(c.Addr)
	}
	return Ownership{Node: inst.Node, AgentAddr: net.JoinHostPort(inst.NodeAddress, strconv.Itoa(agentPort))}, nil
}

// portOf returns the port of a Consul address in any of the forms
// CONSUL_HTTP_ADDR takes: host:port, scheme://host:port, unix://path.
func portOf(addr string) int {
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		addr = u.Host
	}
	if _, p, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			return n
		}
	}
	return 8500
}

// DeregisterViaAgent deregisters inst through its owning agent.
func (c *Client) DeregisterViaAgent(ctx context.Context, inst ServiceInstance, own Ownership, dial AgentDialer, nodeCritical bool) error {
	agent := c
	if !own.Local {
		a, err := dial(own.AgentAddr)
		if err != nil {
			return err
		}
		agent = a
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	err := agent.API.Agent().ServiceDeregisterOpts(inst.ID, q)
	if err == nil {
		return nil
	}
	var se api.StatusError
	if (errors.As(err, &se) && se.Code == 404) || strings.Contains(err.Error(), "Unknown service") {
		return &NotOwnedError{ID: inst.ID, Node: inst.Node, Addr: own.AgentAddr}
	}
	err = agent.Err(err)
	var ue *UnreachableError
	if errors.As(err, &ue) {
		return &AgentUnreachableError{Node: inst.Node, Addr: own.AgentAddr, Err: ue, NodeCritical: nodeCritical}
	}
	return err
}

// DeregisterFromCatalog removes inst from the catalog directly. For an
// instance whose agent is alive this lasts only until the agent's next
// anti-entropy sync.
func (c *Client) DeregisterFromCatalog(ctx context.Context, inst ServiceInstance) error {
	w := (&api.WriteOptions{}).WithContext(ctx)
	_, err := c.API.Catalog().Deregister(&api.CatalogDeregistration{Node: inst.Node, ServiceID: inst.ID}, w)
	return c.Err(err)
}

// DeregisterOptions configure Deregister.
type DeregisterOptions struct {
	// AgentPort is the HTTP port of other nodes' agents; 0 takes the port
	// microctl talks to.
	AgentPort int
	// Dial builds a client for another node's agent.
	Dial AgentDialer
	// CatalogFallback deregisters from the catalog when the owning agent
	// does not answer or does not own the instance.
	CatalogFallback bool
	// NodeCritical says the instance's node has a critical serfHealth.
	NodeCritical bool
}

// Removal is one instance deregistered.
type Removal struct {
	Service   string `json:"service"`
	Instance  string `json:"instance"`
	Node      string `json:"node"`
	Via       string `json:"via"` // "agent" or "catalog"
	AgentAddr string `json:"agent_addr,omitempty"`
	// Warning is set for a catalog deregistration of an instance whose
	// agent may still be alive.
	Warning string `json:"warning,omitempty"`
}

// Deregister removes inst through its owning agent and, only when asked
// to, from the catalog when that agent cannot do it.
func (c *Client) Deregister(ctx context.Context, inst ServiceInstance, o DeregisterOptions) (Removal, error) {
	r := Removal{Service: inst.Service, Instance: inst.ID, Node: inst.Node}
	own, err := c.OwnerOf(ctx, inst, o.AgentPort)
	if err != nil {
		return r, err
	}
	r.AgentAddr = own.AgentAddr
	err = c.DeregisterViaAgent(ctx, inst, own, o.Dial, o.NodeCritical)
	if err == nil {
		r.Via = "agent"
		return r, nil
	}
	var ue *AgentUnreachableError
	var no *NotOwnedError
	if !o.CatalogFallback || !(errors.As(err, &ue) || errors.As(err, &no)) {
		return r, err
	}
	if err := c.DeregisterFromCatalog(ctx, inst); err != nil {
		return r, fmt.Errorf("deregister %s from the catalog: %w", inst.ID, err)
	}
	r.Via = "catalog"
	switch {
	case no != nil:
		// Registered through the catalog API: nothing will restore it.
	case o.NodeCritical:
		r.Warning = fmt.Sprintf("removed from the catalog only; the agent of node %s looks gone (serfHealth critical), so nothing should restore it", inst.Node)
	default:
		r.Warning = fmt.Sprintf("removed from the catalog only: if the agent of node %s is alive, anti-entropy will restore the instance at its next sync", inst.Node)
	}
	return r, nil
}
