package compose

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// Labels docker stack puts on what it deploys; microctl writes the same
// ones so `docker stack ps/rm` work on its stacks and the other way round.
const (
	LabelNamespace = "com.docker.stack.namespace"
	LabelImage     = "com.docker.stack.image"
)

// Stack is a compose project converted to what Swarm needs: service specs
// in dependency-free form plus the networks, configs and secrets to create.
type Stack struct {
	Name     string
	Services []Service // sorted by Name
	Networks []Network // stack networks to create if missing
	External []string  // networks that must already exist with swarm scope
	Configs  []Object
	Secrets  []Object
	// Warnings name every option Swarm cannot honour, once each.
	Warnings []string
}

// Service is one compose service.
type Service struct {
	Name string // as written in the compose file
	// Spec is what is sent to the engine. Config and secret references
	// carry names only; their IDs are filled in at deploy time.
	Spec      swarm.ServiceSpec
	DependsOn []Dependency
}

// FullName is the engine's name of the service, STACK_SERVICE.
func (s Service) FullName() string { return s.Spec.Name }

// IsJob reports whether the service runs to completion.
func (s Service) IsJob() bool {
	return s.Spec.Mode.ReplicatedJob != nil || s.Spec.Mode.GlobalJob != nil
}

// HasHealthcheck reports whether the service defines a health check that
// Swarm waits for before a task counts as running.
func (s Service) HasHealthcheck() bool {
	h := s.Spec.TaskTemplate.ContainerSpec.Healthcheck
	return h != nil && len(h.Test) > 0 && h.Test[0] != "NONE"
}

// Dependency is one depends_on entry.
type Dependency struct {
	Service   string `json:"service"`
	Condition string `json:"condition"` // service_started, service_healthy, service_completed_successfully
}

// Network is a stack network microctl creates when it is missing.
type Network struct {
	Key     string // as written in the compose file
	Name    string // on the engine
	Options network.CreateOptions
}

// Object is a config or secret. Its Name carries a hash of its content
// unless the file gives an explicit name, so changed content makes a new
// object rather than an update Swarm would refuse.
type Object struct {
	Key      string // as written in the compose file
	Name     string // on the engine
	Base     string // Name without the content-hash suffix
	Fixed    bool   // the name was given explicitly: no hash suffix
	External bool
	Data     []byte
	Labels   map[string]string
	// Driver is a secret's external secret-store driver.
	Driver     *swarm.Driver
	Templating *swarm.Driver
}

// ConvertOptions tune the conversion.
type ConvertOptions struct {
	// APIVersion is the engine API version the specs are for: fields a
	// newer API would take are dropped with a warning on older engines.
	APIVersion string
}

// defaultAPIVersion is the API the specs are written for when the caller
// names none: the oldest engine microctl supports (Debian bookworm's
// docker.io 20.10), so nothing newer slips in unannounced.
const defaultAPIVersion = "1.41"

// Convert turns a loaded compose project into a Stack.
func Convert(p *types.Project, o ConvertOptions) (*Stack, error) {
	if o.APIVersion == "" {
		o.APIVersion = defaultAPIVersion
	}
	if err := validateStackName(p.Name); err != nil {
		return nil, err
	}
	c := &converter{p: p, opts: o, stack: &Stack{Name: p.Name}}
	for _, name := range slices.Sorted(maps.Keys(p.Jobs)) {
		c.warnf("jobs.%s: top-level jobs are not supported by Swarm; ignored (use a service with deploy.mode: replicated-job)", name)
	}
	if err := c.networks(); err != nil {
		return nil, err
	}
	var err error
	if c.stack.Configs, err = c.objects("configs", fileObjects(p.Configs)); err != nil {
		return nil, err
	}
	if c.stack.Secrets, err = c.objects("secrets", secretObjects(p.Secrets)); err != nil {
		return nil, err
	}
	for _, name := range p.ServiceNames() {
		svc, err := c.service(p.Services[name])
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		c.stack.Services = append(c.stack.Services, svc)
	}
	if err := checkPorts(c.stack.Services); err != nil {
		return nil, err
	}
	if err := checkDependencies(c.stack.Services); err != nil {
		return nil, err
	}
	c.checkHealthDependencies()
	if _, err := Order(c.stack.Services); err != nil {
		return nil, err
	}
	return c.stack, nil
}

type converter struct {
	p     *types.Project
	opts  ConvertOptions
	stack *Stack
}

// checkHealthDependencies warns when service_healthy names a service
// without a health check: it is then waited for as service_started.
func (c *converter) checkHealthDependencies() {
	byName := map[string]Service{}
	for _, s := range c.stack.Services {
		byName[s.Name] = s
	}
	for _, s := range c.stack.Services {
		for _, d := range s.DependsOn {
			if d.Condition == "service_healthy" && !byName[d.Service].HasHealthcheck() {
				c.warnf("services.%s.depends_on.%s: condition service_healthy, but %s defines no healthcheck; only its image's HEALTHCHECK, if any, is waited for", s.Name, d.Service, d.Service)
			}
			if d.Condition == "service_completed_successfully" && !byName[d.Service].IsJob() {
				c.warnf("services.%s.depends_on.%s: condition service_completed_successfully, but %s is not a job (deploy.mode: replicated-job); waiting for it to run", s.Name, d.Service, d.Service)
			}
		}
	}
}

func (c *converter) warnf(format string, a ...any) {
	c.stack.Warnings = append(c.stack.Warnings, fmt.Sprintf(format, a...))
}

// scope is docker stack's naming: STACK_NAME.
func (c *converter) scope(name string) string { return c.p.Name + "_" + name }

func (c *converter) labels(extra map[string]string) map[string]string {
	l := make(map[string]string, len(extra)+1)
	for k, v := range extra {
		l[k] = v
	}
	l[LabelNamespace] = c.p.Name
	return l
}

// validateStackName keeps names the engine and docker stack accept.
func validateStackName(name string) error {
	if name == "" {
		return fmt.Errorf("the stack needs a name: pass --stack NAME or set name: in the compose file")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("stack name %q: use lowercase letters, digits, '-' and '_' only", name)
		}
	}
	return nil
}

// checkPorts refuses a published port used twice in the stack: Swarm would
// reject the second ingress port, and a second host-mode port would leave
// tasks pending for ever on a single node. Host-mode ports of services
// pinned to different nodes (a constraint node.hostname == X or node.id
// == X) do not meet: one Consul server per node publishing the same port is
// how a cluster stack reaches each of them.
func checkPorts(services []Service) error {
	type user struct {
		service, node string // node: where a host-mode port is pinned, else ""
	}
	seen := map[string][]user{}
	for _, s := range services {
		pinned := pinnedNode(s.Spec.TaskTemplate.Placement)
		for _, p := range s.Spec.EndpointSpec.Ports {
			if p.PublishedPort == 0 {
				continue
			}
			key := fmt.Sprintf("%d/%s", p.PublishedPort, ProtocolOrTCP(p.Protocol))
			u := user{service: s.Name}
			if p.PublishMode == swarm.PortConfigPublishModeHost {
				u.node = pinned
			}
			for _, o := range seen[key] {
				if u.node == "" || o.node == "" || u.node == o.node {
					return portTwice(key, o.service, s.Name)
				}
			}
			seen[key] = append(seen[key], u)
		}
	}
	return nil
}

func portTwice(key, a, b string) error {
	if a == b {
		return fmt.Errorf("port %s is published twice by service %s", key, a)
	}
	return fmt.Errorf("port %s is published twice: by services %s and %s", key, a, b)
}

// pinnedNode is the node a placement holds a service to (node.hostname or
// node.id equal to a value), as "hostname=X" or "id=X"; "" when none.
func pinnedNode(p *swarm.Placement) string {
	if p == nil {
		return ""
	}
	for _, c := range p.Constraints {
		k, v, ok := strings.Cut(c, "==")
		if !ok {
			continue
		}
		switch k = strings.TrimSpace(k); k {
		case "node.hostname", "node.id":
			return strings.TrimPrefix(k, "node.") + "=" + strings.TrimSpace(v)
		}
	}
	return ""
}

// ProtocolOrTCP is a port's protocol, with the engine's default spelled out.
func ProtocolOrTCP(p swarm.PortConfigProtocol) string {
	if p == "" {
		return "tcp"
	}
	return string(p)
}

// usedNetworks returns the compose keys of networks some service uses.
func (c *converter) usedNetworks() map[string]bool {
	used := map[string]bool{}
	for _, s := range c.p.Services {
		if len(s.Networks) == 0 && s.NetworkMode == "" {
			used["default"] = true
		}
		for n := range s.Networks {
			used[n] = true
		}
	}
	return used
}

func (c *converter) networks() error {
	used := c.usedNetworks()
	for _, key := range slices.Sorted(maps.Keys(used)) {
		nw, ok := c.p.Networks[key]
		if !ok {
			if key != "default" {
				return fmt.Errorf("undefined network %q", key)
			}
			nw = types.NetworkConfig{Name: c.scope(key)}
		}
		if nw.External {
			c.stack.External = append(c.stack.External, nw.Name)
			continue
		}
		driver := nw.Driver
		switch driver {
		case "", "overlay":
			driver = "overlay"
		case "bridge":
			c.warnf("networks.%s: driver bridge is local to one host; created as an overlay network so services on every node can reach each other", key)
			driver = "overlay"
		}
		opts := network.CreateOptions{
			Driver:     driver,
			Options:    nw.DriverOpts,
			Internal:   nw.Internal,
			Attachable: nw.Attachable,
			Labels:     c.labels(nw.Labels),
			EnableIPv6: nw.EnableIPv6,
		}
		if nw.EnableIPv4 != nil && !*nw.EnableIPv4 {
			c.warnf("networks.%s: enable_ipv4: false is not supported by Swarm overlay networks; ignored", key)
		}
		if nw.Ipam.Driver != "" || len(nw.Ipam.Config) > 0 {
			opts.IPAM = &network.IPAM{Driver: nw.Ipam.Driver, Options: nw.Ipam.Options}
			for _, pool := range nw.Ipam.Config {
				opts.IPAM.Config = append(opts.IPAM.Config, network.IPAMConfig{
					Subnet: pool.Subnet, Gateway: pool.Gateway, IPRange: pool.IPRange, AuxAddress: pool.AuxiliaryAddresses,
				})
			}
		}
		c.stack.Networks = append(c.stack.Networks, Network{Key: key, Name: nw.Name, Options: opts})
	}
	for _, key := range slices.Sorted(maps.Keys(c.p.Networks)) {
		if !used[key] && key != "default" {
			c.warnf("networks.%s: no service uses it; not created", key)
		}
	}
	return nil
}
