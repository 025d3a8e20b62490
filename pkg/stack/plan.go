package stack

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	"golang.org/x/sync/errgroup"

	"github.com/microctl/microctl/pkg/compose"
	"github.com/microctl/microctl/pkg/stack/mesh"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// StackAPI is the part of the Docker client that deploy, plan, ps, rm,
// rollback and scale use. Tests pass a fake that embeds client.APIClient
// and overrides what they need.
type StackAPI interface {
	Info(ctx context.Context) (system.Info, error)
	DaemonHost() string
	ClientVersion() string

	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	ServiceRemove(ctx context.Context, serviceID string) error
	ServiceInspectWithRaw(ctx context.Context, serviceID string, options swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)

	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkRemove(ctx context.Context, network string) error

	ConfigList(ctx context.Context, options swarm.ConfigListOptions) ([]swarm.Config, error)
	ConfigCreate(ctx context.Context, config swarm.ConfigSpec) (swarm.ConfigCreateResponse, error)
	ConfigRemove(ctx context.Context, id string) error
	SecretList(ctx context.Context, options swarm.SecretListOptions) ([]swarm.Secret, error)
	SecretCreate(ctx context.Context, secret swarm.SecretSpec) (swarm.SecretCreateResponse, error)
	SecretRemove(ctx context.Context, id string) error

	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (image.InspectResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerRemove(ctx context.Context, container string, options container.RemoveOptions) error
	DistributionInspect(ctx context.Context, image, encodedRegistryAuth string) (registry.DistributionInspect, error)
}

// Action is what a deploy does to one object.
type Action string

const (
	ActionCreate    Action = "create"
	ActionUpdate    Action = "update"
	ActionUnchanged Action = "unchanged"
	ActionRemove    Action = "remove"
)

// ResolveImage says when to pin images to a registry digest.
type ResolveImage string

const (
	ResolveAlways  ResolveImage = "always"
	ResolveChanged ResolveImage = "changed"
	ResolveNever   ResolveImage = "never"
)

// ParseResolveImage checks a --resolve-image value.
func ParseResolveImage(s string) (ResolveImage, error) {
	switch r := ResolveImage(s); r {
	case ResolveAlways, ResolveChanged, ResolveNever:
		return r, nil
	}
	return "", fmt.Errorf("--resolve-image must be always, changed or never, not %q", s)
}

// PlanOptions tune the plan.
type PlanOptions struct {
	ResolveImage ResolveImage
	// Prune plans the removal of stack services the file no longer has,
	// and of the stack's networks, configs and secrets nothing uses.
	Prune bool
	// Mesh finds the mesh services (gated on Consul) and sets their
	// update config.
	Mesh MeshOptions
}

// ServicePlan is what a deploy does to one service.
type ServicePlan struct {
	Name     string   `json:"name"`      // as in the compose file
	FullName string   `json:"full_name"` // STACK_SERVICE
	Action   Action   `json:"action"`
	Image    string   `json:"image"`
	Changes  []Change `json:"changes,omitempty"`
	ID       string   `json:"id,omitempty"`
	// Update is the update config the service is deployed with, as a
	// person reads it; for a mesh service, the one the gate needs.
	Update string `json:"update_config,omitempty"`
	// Mesh is set for a service gated on Consul.
	Mesh *MeshPlan `json:"mesh,omitempty"`

	def     *compose.Service  // nil for removals
	spec    swarm.ServiceSpec // what is sent
	current *swarm.Service    // nil for creations
}

// ObjectPlan is what a deploy does to one network, config or secret.
type ObjectPlan struct {
	Kind   string `json:"kind"` // network, config, secret
	Name   string `json:"name"`
	Action Action `json:"action"`
	Note   string `json:"note,omitempty"`
	ID     string `json:"id,omitempty"`
}

// Plan is everything a deploy will do, computed before anything changes.
type Plan struct {
	Stack    string        `json:"stack"`
	Services []ServicePlan `json:"services"` // dependency order; removals last
	Objects  []ObjectPlan  `json:"objects"`
	Warnings []string      `json:"warnings,omitempty"`

	stack    *compose.Stack
	opts     PlanOptions
	netNames map[string]string // network ID -> name
	configs  []swarm.Config    // on the engine when planned
	secrets  []swarm.Secret

	meshWarned bool
	info       system.Info // the manager's, for a re-plan
}

// Changed reports whether applying the plan changes anything.
func (p *Plan) Changed() bool {
	for _, s := range p.Services {
		if s.Action != ActionUnchanged {
			return true
		}
	}
	for _, o := range p.Objects {
		if o.Action == ActionCreate || o.Action == ActionRemove {
			return true
		}
	}
	return false
}

// Counts returns how many services get each action.
func (p *Plan) Counts() map[Action]int {
	n := map[Action]int{}
	for _, s := range p.Services {
		n[s.Action]++
	}
	return n
}

// makePlan compares the stack with what runs on the engine and decides, for
// every service, network, config and secret, what a deploy does. It changes
// nothing. Errors found here (an external network that does not exist, a
// port another service already publishes) stop the deploy before anything
// is created. info is the manager's, as Prepare obtained it: the engine is
// not asked for its role a second time.
func makePlan(ctx context.Context, api StackAPI, info system.Info, st *compose.Stack, o PlanOptions) (*Plan, error) {
	if o.ResolveImage == "" {
		o.ResolveImage = ResolveChanged
	}
	host := api.DaemonHost()
	p := &Plan{Stack: st.Name, stack: st, opts: o, Warnings: append([]string(nil), st.Warnings...), info: info}

	all, err := api.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, sw.ClassifyEngine(host, err)
	}
	nets, err := api.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, sw.ClassifyEngine(host, err)
	}
	p.netNames = map[string]string{}
	netByName := map[string]network.Summary{}
	for _, n := range nets {
		p.netNames[n.ID] = n.Name
		netByName[n.Name] = n
	}

	if err := p.planNetworks(netByName); err != nil {
		return nil, err
	}
	if err := p.planObjects(ctx, api); err != nil {
		return nil, err
	}

	existing := map[string]*swarm.Service{}
	var others []swarm.Service
	for i := range all {
		s := &all[i]
		if s.Spec.Labels[compose.LabelNamespace] == st.Name {
			existing[s.Spec.Name] = s
		} else {
			others = append(others, *s)
		}
	}
	for _, s := range others {
		for _, d := range st.Services {
			if s.Spec.Name == d.FullName() {
				return nil, fmt.Errorf("service %s already exists and does not belong to stack %s (it has no %s=%s label): remove it or pick another stack name", s.Spec.Name, st.Name, compose.LabelNamespace, st.Name)
			}
		}
	}
	portWarnings, err := checkPortConflicts(st, others)
	if err != nil {
		return nil, err
	}
	p.Warnings = append(p.Warnings, portWarnings...)

	order, err := compose.Order(st.Services)
	if err != nil {
		return nil, err
	}
	byName := map[string]*compose.Service{}
	for i := range st.Services {
		byName[st.Services[i].Name] = &st.Services[i]
	}
	images := p.resolveImages(ctx, api, order, byName, existing)
	for _, name := range order {
		d := byName[name]
		sp := ServicePlan{Name: d.Name, FullName: d.FullName(), Image: d.Spec.TaskTemplate.ContainerSpec.Image, def: d}
		if err := validateSpec(d); err != nil {
			return nil, err
		}
		spec := deepCopySpec(d.Spec)
		cur := existing[d.FullName()]
		spec.TaskTemplate.ContainerSpec.Image = images.pick(d, cur)
		sp.spec = spec
		curID := ""
		if cur != nil {
			curID = cur.ID
		}
		p.planMesh(ctx, api, &sp, curID)
		spec = sp.spec
		sp.Update = mesh.DescribeUpdate(spec.UpdateConfig)
		if cur == nil {
			sp.Action = ActionCreate
		} else {
			sp.ID, sp.current = cur.ID, cur
			// docker stack deploy keeps a service's force-update counter;
			// so do we, or every deploy would look like a change.
			spec.TaskTemplate.ForceUpdate = cur.Spec.TaskTemplate.ForceUpdate
			if cur.Spec.TaskTemplate.Placement != nil && len(cur.Spec.TaskTemplate.Placement.Platforms) > 0 &&
				imageWithoutDigest(familiarImage(spec.TaskTemplate.ContainerSpec.Image)) == imageWithoutDigest(familiarImage(cur.Spec.TaskTemplate.ContainerSpec.Image)) {
				if spec.TaskTemplate.Placement == nil {
					spec.TaskTemplate.Placement = &swarm.Placement{}
				}
				spec.TaskTemplate.Placement.Platforms = cur.Spec.TaskTemplate.Placement.Platforms
			}
			sp.Changes = Diff(cur.Spec, spec, p.netNames)
			if len(sp.Changes) == 0 {
				sp.Action = ActionUnchanged
			} else {
				sp.Action = ActionUpdate
			}
		}
		sp.spec = spec
		p.Services = append(p.Services, sp)
	}

	wanted := map[string]bool{}
	for _, d := range st.Services {
		wanted[d.FullName()] = true
	}
	var stale []string
	for name, s := range existing {
		if wanted[name] {
			continue
		}
		if o.Prune {
			p.Services = append(p.Services, ServicePlan{Name: strings.TrimPrefix(name, st.Name+"_"), FullName: name, Action: ActionRemove,
				ID: s.ID, Image: s.Spec.Labels[compose.LabelImage], current: s})
		} else {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		p.Warnings = append(p.Warnings, fmt.Sprintf("service %s is in stack %s but not in the file; kept (--prune removes it)", name, st.Name))
	}
	sort.SliceStable(p.Services, func(i, j int) bool {
		ri, rj := p.Services[i].Action == ActionRemove, p.Services[j].Action == ActionRemove
		if ri != rj {
			return rj
		}
		if ri {
			return p.Services[i].FullName < p.Services[j].FullName
		}
		return false
	})
	p.Objects = append(p.Objects, p.cleanup(projectServices(all, p.Services), nets)...)
	p.checkImages(ctx, api)
	p.checkHostPorts(info.Swarm.Nodes)
	return p, nil
}

// validateSpec checks what the engine would refuse at create, so that the
// deploy stops before it has created anything.
func validateSpec(d *compose.Service) error {
	if err := ValidateImage(d.Spec.TaskTemplate.ContainerSpec.Image); err != nil {
		return fmt.Errorf("service %s: %w", d.Name, err)
	}
	if pl := d.Spec.TaskTemplate.Placement; pl != nil {
		for _, c := range pl.Constraints {
			if err := ValidateConstraint(c); err != nil {
				return fmt.Errorf("service %s: %w", d.Name, err)
			}
		}
	}
	return nil
}

func (p *Plan) planNetworks(byName map[string]network.Summary) error {
	for _, name := range p.stack.External {
		n, ok := byName[name]
		switch {
		case !ok && isPredefinedNetwork(name):
			continue
		case !ok:
			return &NetworkError{Name: name, Msg: "is declared external but does not exist"}
		case n.Scope != "swarm":
			return &NetworkError{Name: name, Msg: fmt.Sprintf("is declared external but has scope %q; services need a swarm-scoped (overlay) network", n.Scope)}
		}
		p.Objects = append(p.Objects, ObjectPlan{Kind: "network", Name: name, Action: ActionUnchanged, Note: "external", ID: n.ID})
	}
	for _, nw := range p.stack.Networks {
		n, ok := byName[nw.Name]
		if !ok {
			p.Objects = append(p.Objects, ObjectPlan{Kind: "network", Name: nw.Name, Action: ActionCreate, Note: nw.Options.Driver})
			continue
		}
		if n.Scope != "swarm" {
			return &NetworkError{Name: nw.Name, Msg: fmt.Sprintf("already exists with scope %q; the stack needs it swarm-scoped", n.Scope)}
		}
		note := ""
		if n.Labels[compose.LabelNamespace] != p.Stack {
			note = "exists outside the stack; used as is"
		} else if diff := networkDiff(n, nw.Options); diff != "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("network %s exists with different %s; networks cannot be updated: remove the stack to recreate it", nw.Name, diff))
		}
		p.Objects = append(p.Objects, ObjectPlan{Kind: "network", Name: nw.Name, Action: ActionUnchanged, Note: note, ID: n.ID})
	}
	return nil
}

func isPredefinedNetwork(name string) bool {
	switch name {
	case "host", "bridge", "none", "ingress":
		return true
	}
	return false
}

// networkDiff names what differs between a network and the options it
// would be created with, as far as NetworkList shows it.
func networkDiff(n network.Summary, o network.CreateOptions) string {
	var d []string
	if n.Driver != o.Driver {
		d = append(d, "driver")
	}
	if n.Internal != o.Internal {
		d = append(d, "internal")
	}
	if n.Attachable != o.Attachable {
		d = append(d, "attachable")
	}
	return strings.Join(d, ", ")
}

// NetworkError is a network the stack cannot use.
type NetworkError struct{ Name, Msg string }

func (e *NetworkError) Error() string { return fmt.Sprintf("network %s %s", e.Name, e.Msg) }

// Hint says what to do about it.
func (e *NetworkError) Hint() string {
	return "create it with: microctl network create " + e.Name + " (or docker network create --driver overlay --attachable " + e.Name + ")"
}

func (p *Plan) planObjects(ctx context.Context, api StackAPI) error {
	configs, err := api.ConfigList(ctx, swarm.ConfigListOptions{})
	if err != nil {
		return sw.ClassifyEngine(api.DaemonHost(), err)
	}
	secrets, err := api.SecretList(ctx, swarm.SecretListOptions{})
	if err != nil {
		return sw.ClassifyEngine(api.DaemonHost(), err)
	}
	p.configs, p.secrets = configs, secrets
	cfgByName := map[string]swarm.Config{}
	for _, c := range configs {
		cfgByName[c.Spec.Name] = c
	}
	secByName := map[string]swarm.Secret{}
	for _, s := range secrets {
		secByName[s.Spec.Name] = s
	}
	for _, o := range p.stack.Configs {
		c, ok := cfgByName[o.Name]
		op := ObjectPlan{Kind: "config", Name: o.Name}
		switch {
		case !ok && o.External:
			return fmt.Errorf("config %s is declared external but does not exist (create it with docker config create)", o.Name)
		case !ok:
			op.Action = ActionCreate
		case o.Fixed && string(c.Spec.Data) != string(o.Data):
			return fmt.Errorf("config %s (configs.%s) has new content, but its name is fixed by name: in the file and Swarm cannot change a config's content: remove name: to let microctl version it", o.Name, o.Key)
		default:
			op.Action, op.ID = ActionUnchanged, c.ID
			if o.External {
				op.Note = "external"
			}
		}
		p.Objects = append(p.Objects, op)
	}
	for _, o := range p.stack.Secrets {
		s, ok := secByName[o.Name]
		op := ObjectPlan{Kind: "secret", Name: o.Name}
		switch {
		case !ok && o.External:
			return fmt.Errorf("secret %s is declared external but does not exist (create it with docker secret create)", o.Name)
		case !ok:
			op.Action = ActionCreate
		default:
			op.Action, op.ID = ActionUnchanged, s.ID
			if o.External {
				op.Note = "external"
			} else if o.Fixed {
				op.Note = "fixed name: content not compared"
			}
		}
		p.Objects = append(p.Objects, op)
	}
	return nil
}

// checkPortConflicts refuses a port that a service outside the stack
// already publishes in ingress mode, or that the stack would publish in
// ingress mode while another service has it: Swarm rejects those. Two
// host-mode ports only clash on a node that runs both tasks (placement may
// keep them apart), so that is a warning: the task would stay pending on
// such a node.
func checkPortConflicts(st *compose.Stack, others []swarm.Service) ([]string, error) {
	type owner struct {
		service string
		mode    swarm.PortConfigPublishMode
	}
	taken := map[string]owner{}
	for _, s := range others {
		if s.Spec.EndpointSpec == nil {
			continue
		}
		for _, pc := range s.Spec.EndpointSpec.Ports {
			if pc.PublishedPort != 0 {
				taken[fmt.Sprintf("%d/%s", pc.PublishedPort, compose.ProtocolOrTCP(pc.Protocol))] = owner{s.Spec.Name, publishMode(pc)}
			}
		}
	}
	var warnings []string
	for _, s := range st.Services {
		for _, pc := range s.Spec.EndpointSpec.Ports {
			key := fmt.Sprintf("%d/%s", pc.PublishedPort, compose.ProtocolOrTCP(pc.Protocol))
			other, ok := taken[key]
			if !ok || pc.PublishedPort == 0 {
				continue
			}
			if other.mode == swarm.PortConfigPublishModeHost && publishMode(pc) == swarm.PortConfigPublishModeHost {
				warnings = append(warnings, fmt.Sprintf("port %s of service %s is also published in host mode by service %s: a node running both cannot start the second", key, s.Name, other.service))
				continue
			}
			return nil, fmt.Errorf("port %s of service %s is already published by service %s", key, s.Name, other.service)
		}
	}
	return warnings, nil
}

func publishMode(pc swarm.PortConfig) swarm.PortConfigPublishMode {
	if pc.PublishMode == "" {
		return swarm.PortConfigPublishModeIngress
	}
	return pc.PublishMode
}

// imageChoice holds the pinned (image@digest) references resolved for the
// deploy.
type imageChoice struct {
	opts   PlanOptions
	pinned map[string]string // image as written -> image@digest
}

// pick returns the image to send for d: pinned when resolved; otherwise,
// when the image as written is the one deployed before, the engine's
// current (possibly pinned) reference, as docker stack deploy does, so an
// unchanged file never changes the image.
func (ic imageChoice) pick(d *compose.Service, cur *swarm.Service) string {
	img := d.Spec.TaskTemplate.ContainerSpec.Image
	if pin, ok := ic.pinned[img]; ok {
		return pin
	}
	// Keep the digest the service was pinned to, but only when the
	// service still runs the file's image: `docker service update --image`
	// changes the image and leaves the stack's label, and a plan that
	// trusted the label called such a service unchanged (measured: a greeter
	// switched by hand to another image stayed on it through a deploy).
	if cur != nil && cur.Spec.Labels[compose.LabelImage] == img && cur.Spec.TaskTemplate.ContainerSpec != nil &&
		imageWithoutDigest(familiarImage(cur.Spec.TaskTemplate.ContainerSpec.Image)) == imageWithoutDigest(familiarImage(img)) {
		return cur.Spec.TaskTemplate.ContainerSpec.Image
	}
	return img
}

// resolveImages asks the registry for digests, as --resolve-image says:
// always for every image, changed for images new to their service. Each
// image that cannot be pinned gets one warning.
func (p *Plan) resolveImages(ctx context.Context, api StackAPI, order []string, byName map[string]*compose.Service, existing map[string]*swarm.Service) imageChoice {
	ic := imageChoice{opts: p.opts, pinned: map[string]string{}}
	if p.opts.ResolveImage == ResolveNever {
		return ic
	}
	want := map[string]bool{}
	for _, name := range order {
		d := byName[name]
		img := d.Spec.TaskTemplate.ContainerSpec.Image
		cur := existing[d.FullName()]
		if p.opts.ResolveImage == ResolveAlways || cur == nil || cur.Spec.Labels[compose.LabelImage] != img {
			if !strings.Contains(img, "@") {
				want[img] = true
			}
		}
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(4) // a registry lookup is a network round trip: a few at once
	failed := map[string]string{}
	for img := range want {
		g.Go(func() error {
			di, err := api.DistributionInspect(ctx, img, "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed[img] = registryReason(err)
				return nil // a warning, not a failure of the plan
			}
			ic.pinned[img] = familiarImage(img) + "@" + di.Descriptor.Digest.String()
			return nil
		})
	}
	_ = g.Wait() // every lookup returns nil: failures are warnings
	for _, img := range slices.Sorted(maps.Keys(failed)) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("image %s could not be pinned to a digest (%s); every node uses its own copy of it", img, failed[img]))
	}
	return ic
}

// checkImages warns about images this engine does not have: its tasks
// would fail with "No such image" unless the node can pull it.
func (p *Plan) checkImages(ctx context.Context, api StackAPI) {
	seen := map[string]bool{}
	for _, s := range p.Services {
		if s.Action == ActionRemove || seen[s.Image] {
			continue
		}
		seen[s.Image] = true
		_, err := api.ImageInspect(ctx, imageWithoutDigest(s.Image))
		if err != nil && cerrdefs.IsNotFound(err) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("image %s is not on this engine: its tasks fail with \"No such image\" unless their node can pull it", s.Image))
		}
	}
}

// checkHostPorts warns when a service publishes a host-mode port with more
// replicas than there are nodes: two tasks cannot bind one port on one
// node, so the extra tasks stay pending until --timeout.
func (p *Plan) checkHostPorts(nodes int) {
	if nodes <= 0 {
		return
	}
	for _, sp := range p.Services {
		if sp.def == nil || sp.def.Spec.Mode.Replicated == nil || sp.def.Spec.Mode.Replicated.Replicas == nil {
			continue
		}
		n := *sp.def.Spec.Mode.Replicated.Replicas
		u := sp.def.Spec.UpdateConfig
		for _, pc := range sp.def.Spec.EndpointSpec.Ports {
			if pc.PublishMode != swarm.PortConfigPublishModeHost || pc.PublishedPort == 0 {
				continue
			}
			if n > uint64(nodes) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("service %s publishes port %d in host mode with %d replicas on %d node(s): only %d task(s) can bind it, the others stay pending",
					sp.Name, pc.PublishedPort, n, nodes, nodes))
				break
			}
			if u != nil && u.Order == swarm.UpdateOrderStartFirst && n >= uint64(nodes) {
				p.Warnings = append(p.Warnings, fmt.Sprintf("service %s publishes port %d in host mode and updates start-first: a new task cannot bind the port while the old one on its node holds it; use update_config.order: stop-first",
					sp.Name, pc.PublishedPort))
				break
			}
		}
	}
}

// registryReason shortens a failed registry lookup to its cause.
func registryReason(err error) string {
	switch {
	case cerrdefs.IsNotFound(err):
		return "not in the registry"
	case cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return "registry access denied"
	}
	// The engine answers most distribution failures with a 500 whose text
	// alone says what went wrong (no registry, no such manifest): only the
	// text is left to go by.
	msg := strings.TrimPrefix(firstLine(err.Error()), "Error response from daemon: ")
	switch {
	case strings.Contains(msg, "no such host"), strings.Contains(msg, "dial tcp"), strings.Contains(msg, "i/o timeout"):
		return "registry unreachable"
	case strings.Contains(msg, "not found"), strings.Contains(msg, "manifest unknown"):
		return "not in the registry"
	case strings.Contains(msg, "unauthorized"), strings.Contains(msg, "denied"):
		return "registry access denied"
	}
	return msg
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// stackFilter selects what carries the stack's namespace label.
func stackFilter(stack string) filters.Args {
	return filters.NewArgs(filters.Arg("label", compose.LabelNamespace+"="+stack))
}
