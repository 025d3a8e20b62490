package registry

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/boundhttp"
)

// Client is a Consul API client that remembers the address it talks to, so
// every error can name it.
type Client struct {
	API  *api.Client
	Addr string
	// Timeout bounds every request (0: unbounded); a blocking query gets
	// its wait on top.
	Timeout time.Duration
}

// ClientOption configures NewClient.
type ClientOption func(*clientOptions)

type clientOptions struct {
	timeout time.Duration
}

// WithTimeout bounds every request the client makes: one that gets no
// answer within d fails with a boundhttp.TimeoutError naming the address.
// A blocking query (index and wait) is allowed its wait, plus Consul's
// jitter of wait/16, on top of d. Zero means no bound.
func WithTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) { o.timeout = d }
}

// NewClient builds a client from cfg. It does not dial: the first request
// does, so commands that never touch Consul never fail on it. Every
// request goes through a transport that recognises a server that is not
// Consul and, with WithTimeout, bounds it.
func NewClient(cfg *api.Config, opts ...ClientOption) (*Client, error) {
	var o clientOptions
	for _, opt := range opts {
		opt(&o)
	}
	addr := cfg.Address
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("invalid Consul configuration for %s: %w", addr, err)
	}
	// api.NewClient keeps a pointer to the same http.Client it left in
	// cfg, so wrapping its transport here covers every request it sends
	// (including the unix:// socket transport it builds itself).
	if cfg.HttpClient != nil {
		cfg.HttpClient.Transport = boundhttp.New(cfg.HttpClient.Transport, boundhttp.Options{
			Peer: "Consul", Addr: addr, Timeout: o.timeout, Extra: blockingWait,
			Identify: identifyConsul, WrongPeer: "a Consul agent",
		})
	}
	return &Client{API: c, Addr: addr, Timeout: o.timeout}, nil
}

// maxBlockingWait is Consul's own cap on a blocking query's wait.
const maxBlockingWait = 10 * time.Minute

// blockingWait is how long a blocking query may legitimately take: its wait
// (Consul's default 5 minutes when none is given, at most 10) plus the up
// to wait/16 of jitter Consul adds.
func blockingWait(req *http.Request) time.Duration {
	q := req.URL.Query()
	if !q.Has("index") {
		return 0
	}
	wait := 5 * time.Minute
	if w := q.Get("wait"); w != "" {
		if d, err := time.ParseDuration(w); err == nil && d > 0 {
			wait = d
		}
	}
	wait = min(wait, maxBlockingWait)
	return wait + wait/16
}

// identifyConsul returns why resp cannot have come from a Consul agent, or
// "". Consul never serves HTML on /v1/ and answers every GET on the
// endpoints below (a missing KV key is a 404 that still carries
// X-Consul-Index). A 200 that is not JSON is caught where it is decoded
// (Classify).
func identifyConsul(req *http.Request, resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	what := req.Method + " " + req.URL.Path
	if strings.Contains(ct, "text/html") {
		return fmt.Sprintf("it answered %s with an HTML page, %s", what, resp.Status)
	}
	if req.Method != http.MethodGet || !strings.HasPrefix(req.URL.Path, "/v1/") {
		return ""
	}
	always := false
	for _, p := range []string{"/v1/agent/self", "/v1/catalog/", "/v1/health/", "/v1/status/", "/v1/kv/"} {
		always = always || strings.HasPrefix(req.URL.Path, p)
	}
	if always && resp.StatusCode == http.StatusNotFound && !hasConsulHeader(resp.Header) {
		return fmt.Sprintf("it answered %s with %s", what, resp.Status)
	}
	return ""
}

func hasConsulHeader(h http.Header) bool {
	for k := range h {
		if strings.HasPrefix(http.CanonicalHeaderKey(k), "X-Consul-") {
			return true
		}
	}
	return false
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
