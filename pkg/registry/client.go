package registry

import (
	"context"
	"fmt"

	"github.com/hashicorp/consul/api"
)

// Client is a Consul API client that remembers the address it talks to, so
// every error can name it.
type Client struct {
	API  *api.Client
	Addr string
}

// NewClient builds a client from cfg. It does not dial: the first request
// does, so commands that never touch Consul never fail on it.
func NewClient(cfg *api.Config) (*Client, error) {
	addr := cfg.Address
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("invalid Consul configuration for %s: %w", addr, err)
	}
	return &Client{API: c, Addr: addr}, nil
}

// Err classifies err from a call to Consul into an UnreachableError or a
// PermissionError when it is one, naming this client's address.
func (c *Client) Err(err error) error { return Classify(c.Addr, err) }

// AgentInfo is what microctl needs to know about the agent it talks to.
type AgentInfo struct {
	NodeName   string `json:"node_name"`
	Datacenter string `json:"datacenter"`
	Version    string `json:"version"`
	Server     bool   `json:"server"`
}

// Agent returns facts about the local agent. It is also the cheapest way to
// find out whether Consul answers at all.
func (c *Client) Agent(ctx context.Context) (AgentInfo, error) {
	// Agent().Self() takes no context, so Ctrl-C and --timeout could not
	// cut it short; the raw query does take one.
	var self map[string]map[string]any
	_, err := c.API.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return AgentInfo{}, c.Err(err)
	}
	var info AgentInfo
	if cfg, ok := self["Config"]; ok {
		info.NodeName, _ = cfg["NodeName"].(string)
		info.Datacenter, _ = cfg["Datacenter"].(string)
		info.Version, _ = cfg["Version"].(string)
		info.Server, _ = cfg["Server"].(bool)
	}
	return info, nil
}

// Leader returns the address of the Raft leader, or "" when there is none.
func (c *Client) Leader(ctx context.Context) (string, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	// LeaderWithQueryOptions honours the context; plain Leader() does not.
	leader, err := c.API.Status().LeaderWithQueryOptions(q)
	if err != nil {
		return "", c.Err(err)
	}
	return leader, nil
}

// TokenStatus describes the ACL token the client sends.
type TokenStatus struct {
	ACLsEnabled bool     `json:"acls_enabled"`
	AccessorID  string   `json:"accessor_id,omitempty"`
	Description string   `json:"description,omitempty"`
	Policies    []string `json:"policies,omitempty"`
}

// Token reports whether ACLs are enforced and, when they are, which token
// this client presents. A token Consul does not know is a PermissionError.
func (c *Client) Token(ctx context.Context) (TokenStatus, error) {
	q := (&api.QueryOptions{}).WithContext(ctx)
	tok, _, err := c.API.ACL().TokenReadSelf(q)
	if err != nil {
		if isACLDisabled(err) {
			return TokenStatus{ACLsEnabled: false}, nil
		}
		return TokenStatus{ACLsEnabled: true}, c.Err(err)
	}
	st := TokenStatus{ACLsEnabled: true, AccessorID: tok.AccessorID, Description: tok.Description}
	for _, p := range tok.Policies {
		st.Policies = append(st.Policies, p.Name)
	}
	return st, nil
}
