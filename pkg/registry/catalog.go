package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"golang.org/x/sync/errgroup"
)

// Consul's health statuses. A check in maintenance is reported as
// critical by Consul itself, with a reserved check ID.
const (
	StatusPassing  = "passing"
	StatusWarning  = "warning"
	StatusCritical = "critical"
)

// Check is one health check as the catalog holds it: a node check
// (ServiceID empty, e.g. serfHealth) or a service check.
type Check struct {
	Node        string `json:"node"`
	CheckID     string `json:"check_id"`
	Name        string `json:"name"`
	Status      string `json:"status"`
	Output      string `json:"output"`
	Type        string `json:"type"`
	ServiceID   string `json:"service_id,omitempty"`
	ServiceName string `json:"service_name,omitempty"`
	// Interval and Timeout of checks Consul runs itself (http, tcp, grpc…).
	// A TTL check's TTL is returned by no endpoint (FACTS.md).
	Interval    string `json:"interval,omitempty"`
	Timeout     string `json:"timeout,omitempty"`
	CreateIndex uint64 `json:"create_index"`
	// ModifyIndex changes with every status or output change that reaches
	// the catalog, and with nothing else: a heartbeat that changes neither
	// leaves it alone. An unchanged ModifyIndex proves an unchanged status.
	ModifyIndex uint64 `json:"modify_index"`
}

// Key identifies a check in the catalog: check IDs are unique per node only.
func (c Check) Key() string { return c.Node + "/" + c.CheckID }

// Node is a catalog node: in practice, one Consul agent.
type Node struct {
	Name    string            `json:"name"`
	Address string            `json:"address"`
	Meta    map[string]string `json:"meta,omitempty"`
	Checks  []Check           `json:"checks,omitempty"` // node-level checks (serfHealth, maintenance)
}

// ServiceInstance is one registered instance of a service.
type ServiceInstance struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Node    string `json:"node"`
	// NodeAddress is the address of the node (agent) the instance is
	// registered on; Address is the instance's own, "" when it registered
	// none (clients then dial the node address).
	NodeAddress string            `json:"node_address"`
	Address     string            `json:"address"`
	Port        int               `json:"port"`
	Tags        []string          `json:"tags"`
	Meta        map[string]string `json:"meta,omitempty"`
	Kind        string            `json:"kind,omitempty"`
	CreateIndex uint64            `json:"create_index"`
	ModifyIndex uint64            `json:"modify_index"`
	// Checks are the instance's own checks; its node's checks are in the
	// Node. Consul (and go-micro's discovery) count both.
	Checks []Check `json:"checks"`
}

// Key identifies an instance in the catalog: service IDs are unique per
// node only.
func (s ServiceInstance) Key() string { return s.Node + "/" + s.ID }

// DialAddress is the address a client dials: the instance's own address,
// or its node's when it registered none.
func (s ServiceInstance) DialAddress() string {
	if s.Address != "" {
		return s.Address
	}
	return s.NodeAddress
}

// ACLFiltering says which reads came back with results hidden by ACLs
// (X-Consul-Results-Filtered-By-ACLs): the token lacks node:read on some
// node (Nodes) or service:read on some service (Services, Checks).
type ACLFiltering struct {
	Nodes    bool `json:"nodes"`
	Services bool `json:"services"`
	Checks   bool `json:"checks"`
}

// Any reports whether anything was hidden.
func (f ACLFiltering) Any() bool { return f.Nodes || f.Services || f.Checks }

// Catalog is every node, instance and check of a datacenter, read in a
// number of requests that does not depend on the number of services.
type Catalog struct {
	Nodes     []Node            `json:"nodes"`
	Instances []ServiceInstance `json:"instances"`
	// ChecksIndex is the X-Consul-Index of the checks read: a blocking
	// query on /v1/health/state/any from it waits for the next change.
	ChecksIndex uint64       `json:"checks_index"`
	Filtered    ACLFiltering `json:"acl_filtered"`
	// Requests is the number of HTTP requests the read took.
	Requests int `json:"requests"`
}

// Node returns the named node, or nil.
func (c *Catalog) Node(name string) *Node {
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i]
		}
	}
	return nil
}

// ServiceNames returns the names of the services with at least one
// instance, sorted.
func (c *Catalog) ServiceNames() []string {
	seen := map[string]bool{}
	var names []string
	for _, in := range c.Instances {
		if !seen[in.Service] {
			seen[in.Service] = true
			names = append(names, in.Service)
		}
	}
	slices.Sort(names)
	return names
}

// The wire forms of what Consul returns, decoded into our own types rather
// than the api package's: its HealthCheck drops the Interval and Timeout
// that /v1/health/state/any does return for http and tcp checks.
type wireCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Output      string
	Type        string
	ServiceID   string
	ServiceName string
	Interval    string
	Timeout     string
	CreateIndex uint64
	ModifyIndex uint64
}

func (w wireCheck) check() Check {
	return Check{Node: w.Node, CheckID: w.CheckID, Name: w.Name, Status: w.Status, Output: w.Output,
		Type: w.Type, ServiceID: w.ServiceID, ServiceName: w.ServiceName, Interval: w.Interval,
		Timeout: w.Timeout, CreateIndex: w.CreateIndex, ModifyIndex: w.ModifyIndex}
}

type wireNode struct {
	Node    string
	Address string
	Meta    map[string]string
}

type wireService struct {
	ID          string
	Service     string
	Kind        string
	Tags        []string
	Address     string
	Port        int
	Meta        map[string]string
	CreateIndex uint64
	ModifyIndex uint64
}

type wireNodeServices struct {
	Node     *wireNode
	Services []wireService
}

// nodeServicesConcurrency bounds the per-node reads in flight: enough to
// hide latency on a cluster of a few dozen agents, not a flood.
const nodeServicesConcurrency = 8

// Catalog reads every node, instance and check. The requests are
// /v1/health/state/any (every check, one request), /v1/catalog/nodes, and
// /v1/catalog/node-services/:node per node: their number grows with the
// number of Consul agents, never with the number of services. The obvious
// alternative, one /v1/health/service/:name per service, makes 500 requests
// for 500 services. No documented endpoint returns every instance with its
// address and Meta in one request (/v1/catalog/services has names and tags
// only; /v1/agent/services is one agent's view; /v1/internal/ui/nodes does,
// but is internal to the web UI and carries no compatibility promise).
func (c *Client) Catalog(ctx context.Context) (*Catalog, error) {
	// Checks are read before instances so that a read racing with a
	// registration can be recognised: an instance created after the checks
	// read (CreateIndex > ChecksIndex) would otherwise look check-less.
	// Such a read is retried; a deregistration racing the other way only
	// leaves checks whose instance is gone, which are dropped.
	var (
		cat *Catalog
		err error
	)
	requests := 0
	for attempt := 0; attempt < 3; attempt++ {
		var racy bool
		cat, racy, err = c.readCatalog(ctx)
		if err != nil {
			return nil, err
		}
		requests += cat.Requests
		if !racy {
			break
		}
	}
	cat.Requests = requests
	return cat, nil
}

func (c *Client) readCatalog(ctx context.Context) (*Catalog, bool, error) {
	cat := &Catalog{}
	var (
		checks  []wireCheck
		nodes   []wireNode
		chkMeta *api.QueryMeta
		ndMeta  *api.QueryMeta
		chkErr  error
		ndErr   error
		wg      sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		chkMeta, chkErr = c.API.Raw().Query("/v1/health/state/any", &checks, c.query(ctx))
	}()
	go func() {
		defer wg.Done()
		ndMeta, ndErr = c.API.Raw().Query("/v1/catalog/nodes", &nodes, c.query(ctx))
	}()
	wg.Wait()
	cat.Requests += 2
	if chkErr != nil {
		return nil, false, c.Err(chkErr)
	}
	if ndErr != nil {
		return nil, false, c.Err(ndErr)
	}
	cat.ChecksIndex = chkMeta.LastIndex
	cat.Filtered.Checks = chkMeta.ResultsFilteredByACLs
	cat.Filtered.Nodes = ndMeta.ResultsFilteredByACLs

	perNode := make([]*wireNodeServices, len(nodes))
	filtered := make([]bool, len(nodes))
	// The first failure cancels the reads still in flight: the catalog is
	// answered whole or not at all.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(nodeServicesConcurrency)
	for i, n := range nodes {
		g.Go(func() error {
			var out wireNodeServices
			meta, err := c.API.Raw().Query(endpoint("/v1/catalog/node-services/", n.Node), &out, c.query(gctx))
			if err != nil {
				return c.Err(err)
			}
			perNode[i] = &out
			filtered[i] = meta.ResultsFilteredByACLs
			return nil
		})
	}
	err := g.Wait()
	cat.Requests += len(nodes)
	if err != nil {
		return nil, false, err
	}

	byKey := map[string]int{}
	racy := false
	for i, n := range nodes {
		cat.Nodes = append(cat.Nodes, Node{Name: n.Node, Address: n.Address, Meta: n.Meta})
		cat.Filtered.Services = cat.Filtered.Services || filtered[i]
		if perNode[i] == nil {
			continue // the node left between the two reads
		}
		for _, s := range perNode[i].Services {
			if s.CreateIndex > cat.ChecksIndex && cat.ChecksIndex > 0 {
				racy = true
			}
			cat.Instances = append(cat.Instances, ServiceInstance{
				ID: s.ID, Service: s.Service, Node: n.Node, NodeAddress: n.Address, Address: s.Address,
				Port: s.Port, Tags: nonNil(s.Tags), Meta: s.Meta, Kind: s.Kind,
				CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex, Checks: []Check{},
			})
		}
	}
	// Consul sends X-Consul-Results-Filtered-By-ACLs only to requests
	// that carry a token (to leak less to anonymous ones). But a datacenter
	// always has a node and the "consul" service of its servers: seeing
	// neither while ACLs default to deny means they were hidden.
	deny := chkMeta.DefaultACLPolicy == "deny" || ndMeta.DefaultACLPolicy == "deny"
	if deny && len(nodes) == 0 {
		cat.Filtered.Nodes = true
	}
	if deny && len(nodes) > 0 && len(cat.Instances) == 0 {
		cat.Filtered.Services = true
	}
	slices.SortFunc(cat.Instances, func(a, b ServiceInstance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	for i, in := range cat.Instances {
		byKey[in.Key()] = i
	}
	nodeIdx := map[string]int{}
	slices.SortFunc(cat.Nodes, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	for i, n := range cat.Nodes {
		nodeIdx[n.Name] = i
	}
	for _, w := range checks {
		ch := w.check()
		if ch.ServiceID == "" {
			if i, ok := nodeIdx[ch.Node]; ok {
				cat.Nodes[i].Checks = append(cat.Nodes[i].Checks, ch)
			}
			continue
		}
		if i, ok := byKey[ch.Node+"/"+ch.ServiceID]; ok {
			cat.Instances[i].Checks = append(cat.Instances[i].Checks, ch)
		}
		// else: deregistered between the two reads; the later read wins.
	}
	sortChecks := func(cs []Check) {
		slices.SortFunc(cs, func(a, b Check) int { return cmp.Compare(a.CheckID, b.CheckID) })
	}
	for i := range cat.Instances {
		sortChecks(cat.Instances[i].Checks)
	}
	for i := range cat.Nodes {
		sortChecks(cat.Nodes[i].Checks)
	}
	return cat, racy, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// endpoint is the one place a path with a name in it is built. The name
// goes in unescaped: consul/api puts the path into url.URL.Path, which
// escapes it when the request is sent, so escaping it here too sent
// "%25C3%25A9" for "é" (and "%2520" for a space), and Consul looked up a
// name that does not exist: "no service named X; did you mean X?", and
// every instance on a node with such a name vanished from the catalog.
func endpoint(prefix, name string) string { return prefix + name }

// query returns read options bound to ctx, so Ctrl-C and timeouts cut a
// read short.
func (c *Client) query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

// ServiceInstances reads one service's instances with their own and their
// nodes' checks in a single request (/v1/health/service/:name). An unknown
// service is an empty list, as is a service the token may not read.
func (c *Client) ServiceInstances(ctx context.Context, service string) ([]ServiceInstance, []Node, ACLFiltering, error) {
	var entries []struct {
		Node    wireNode
		Service wireService
		Checks  []wireCheck
	}
	meta, err := c.API.Raw().Query(endpoint("/v1/health/service/", service), &entries, c.query(ctx))
	if err != nil {
		var se api.StatusError
		if errors.As(err, &se) && se.Code == 400 {
			// Consul refuses some names outright (control characters), with
			// an empty body: say which name.
			return nil, nil, ACLFiltering{}, fmt.Errorf("Consul at %s refused the service name %q as malformed (400 Bad Request)", c.Addr, service)
		}
		return nil, nil, ACLFiltering{}, c.Err(err)
	}
	filtered := ACLFiltering{Services: meta.ResultsFilteredByACLs}
	var out []ServiceInstance
	nodes := map[string]*Node{}
	for _, e := range entries {
		in := ServiceInstance{ID: e.Service.ID, Service: e.Service.Service, Node: e.Node.Node, NodeAddress: e.Node.Address,
			Address: e.Service.Address, Port: e.Service.Port, Tags: nonNil(e.Service.Tags), Meta: e.Service.Meta,
			Kind: e.Service.Kind, CreateIndex: e.Service.CreateIndex, ModifyIndex: e.Service.ModifyIndex, Checks: []Check{}}
		n := nodes[e.Node.Node]
		if n == nil {
			n = &Node{Name: e.Node.Node, Address: e.Node.Address, Meta: e.Node.Meta}
			nodes[e.Node.Node] = n
		}
		for _, w := range e.Checks {
			ch := w.check()
			if ch.ServiceID == "" {
				if !slices.ContainsFunc(n.Checks, func(x Check) bool { return x.CheckID == ch.CheckID }) {
					n.Checks = append(n.Checks, ch)
				}
				continue
			}
			in.Checks = append(in.Checks, ch)
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b ServiceInstance) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.ID, b.ID))
	})
	var ns []Node
	for _, n := range nodes {
		ns = append(ns, *n)
	}
	slices.SortFunc(ns, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	return out, ns, filtered, nil
}

// ServiceNames lists the names of every registered service
// (/v1/catalog/services), for "did you mean" suggestions.
func (c *Client) ServiceNames(ctx context.Context) ([]string, error) {
	var m map[string][]string
	if _, err := c.API.Raw().Query("/v1/catalog/services", &m, c.query(ctx)); err != nil {
		return nil, c.Err(err)
	}
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// BlockingResult is what one blocking query returned.
type BlockingResult struct {
	Index    uint64
	Filtered bool
}

// WatchChecks is one blocking query on every check: it returns when the
// checks change after index, or after about wait (a return is no guarantee
// of a change). index 0 returns at once.
func (c *Client) WatchChecks(ctx context.Context, index uint64, wait time.Duration) ([]Check, BlockingResult, error) {
	var wire []wireCheck
	q := c.query(ctx)
	q.WaitIndex, q.WaitTime = index, wait
	meta, err := c.API.Raw().Query("/v1/health/state/any", &wire, q)
	if err != nil {
		return nil, BlockingResult{}, c.Err(err)
	}
	out := make([]Check, len(wire))
	for i, w := range wire {
		out[i] = w.check()
	}
	return out, BlockingResult{Index: meta.LastIndex, Filtered: meta.ResultsFilteredByACLs}, nil
}

// WatchServices is one blocking query on the list of services
// (/v1/catalog/services). Its index moves with every registration and
// deregistration of any instance, including instances with no check,
// which WatchChecks cannot see.
func (c *Client) WatchServices(ctx context.Context, index uint64, wait time.Duration) (BlockingResult, error) {
	var m map[string][]string
	q := c.query(ctx)
	q.WaitIndex, q.WaitTime = index, wait
	meta, err := c.API.Raw().Query("/v1/catalog/services", &m, q)
	if err != nil {
		return BlockingResult{}, c.Err(err)
	}
	return BlockingResult{Index: meta.LastIndex, Filtered: meta.ResultsFilteredByACLs}, nil
}

// FilteredError says that Consul answered but hid everything there was to
// see: the token lacks a read permission. It is a PermissionError, so it
// carries the same hint.
func FilteredError(addr string, f ACLFiltering) error {
	detail := "the token lacks service:read: every service was hidden by ACLs"
	if f.Nodes {
		detail = "the token lacks node:read: every node, and so every instance, was hidden by ACLs (reading the registry takes node:read and service:read)"
	}
	return &PermissionError{Addr: addr, Detail: detail}
}
