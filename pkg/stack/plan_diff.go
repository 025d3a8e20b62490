package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/pkg/compose"
)

// Change is one field of a service that a deploy changes.
type Change struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

func (c Change) String() string {
	if c.From == "" && c.To == "" {
		return c.Field
	}
	return fmt.Sprintf("%s %s -> %s", c.Field, c.From, c.To)
}

// Swarm's defaults (swarmkit's api/defaults), as the engine applies them to
// a spec field that was left empty. Both sides of a comparison get them, so
// "left empty" and "set to the default" compare equal.
const (
	defaultStopGrace    = 10 * time.Second
	defaultRestartDelay = 5 * time.Second
	defaultMonitor      = 5 * time.Second
)

// familiarImage is the image reference as the Docker client sends it: a
// missing tag becomes :latest, docker.io/library/ is dropped.
func familiarImage(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}

// imageWithoutDigest drops a pinned @sha256:... from an image reference.
func imageWithoutDigest(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		return image[:i]
	}
	return image
}

// normalize returns spec as a generic JSON tree in which everything the
// engine fills in, reorders or renames has been brought to one form, and
// every zero value removed. Two specs that run the same tasks normalise to
// equal trees. netNames maps network IDs to names (the engine stores
// attachments by ID; we send names).
func normalize(spec swarm.ServiceSpec, netNames map[string]string) map[string]any {
	s := deepCopySpec(spec)
	// The image label follows the image; a change shows as "image".
	delete(s.Labels, compose.LabelImage)
	tt := &s.TaskTemplate
	if tt.ContainerSpec == nil {
		tt.ContainerSpec = &swarm.ContainerSpec{}
	}
	cs := tt.ContainerSpec
	cs.Image = familiarImage(cs.Image)
	if cs.Isolation == "" {
		cs.Isolation = "default"
	}
	if cs.StopGracePeriod == nil {
		d := defaultStopGrace
		cs.StopGracePeriod = &d
	}
	sort.Strings(cs.Env)
	for _, c := range cs.Configs {
		c.ConfigID = ""
	}
	sort.SliceStable(cs.Configs, func(i, j int) bool { return refKey(cs.Configs[i]) < refKey(cs.Configs[j]) })
	for _, c := range cs.Secrets {
		c.SecretID = ""
		if c.File != nil {
			if rest, ok := strings.CutPrefix(c.File.Name, "/run/secrets/"); ok && !strings.Contains(rest, "/") {
				c.File.Name = rest
			}
		}
	}
	sort.SliceStable(cs.Secrets, func(i, j int) bool { return refKey(cs.Secrets[i]) < refKey(cs.Secrets[j]) })
	if tt.Runtime == "" {
		tt.Runtime = swarm.RuntimeContainer
	}
	if tt.RestartPolicy == nil {
		tt.RestartPolicy = &swarm.RestartPolicy{}
	}
	if tt.RestartPolicy.Condition == "" {
		tt.RestartPolicy.Condition = swarm.RestartPolicyConditionAny
	}
	if tt.RestartPolicy.Delay == nil {
		d := defaultRestartDelay
		tt.RestartPolicy.Delay = &d
	}
	if tt.Placement != nil {
		// Platforms come from pinning an image digest, not from the file.
		tt.Placement.Platforms = nil
	}
	// The deprecated top-level Networks of old services mean the same.
	//lint:ignore SA1019 reading the deprecated field is the point
	if len(tt.Networks) == 0 && len(s.Networks) > 0 {
		//lint:ignore SA1019 see above
		tt.Networks = s.Networks
	}
	//lint:ignore SA1019 see above
	s.Networks = nil
	for i := range tt.Networks {
		n := &tt.Networks[i]
		if name, ok := netNames[n.Target]; ok {
			n.Target = name
		}
		sort.Strings(n.Aliases)
	}
	sort.SliceStable(tt.Networks, func(i, j int) bool { return tt.Networks[i].Target < tt.Networks[j].Target })

	switch {
	case s.Mode.Replicated != nil:
		if s.Mode.Replicated.Replicas == nil {
			one := uint64(1)
			s.Mode.Replicated.Replicas = &one
		}
	case s.Mode.ReplicatedJob != nil:
		j := s.Mode.ReplicatedJob
		if j.MaxConcurrent == nil {
			one := uint64(1)
			j.MaxConcurrent = &one
		}
		if j.TotalCompletions == nil {
			v := *j.MaxConcurrent
			j.TotalCompletions = &v
		}
	case s.Mode.Global == nil && s.Mode.GlobalJob == nil:
		one := uint64(1)
		s.Mode.Replicated = &swarm.ReplicatedService{Replicas: &one}
	}
	s.UpdateConfig = normalizeUpdate(s.UpdateConfig)
	s.RollbackConfig = normalizeUpdate(s.RollbackConfig)

	if s.EndpointSpec == nil {
		s.EndpointSpec = &swarm.EndpointSpec{}
	}
	if s.EndpointSpec.Mode == "" {
		s.EndpointSpec.Mode = swarm.ResolutionModeVIP
	}
	for i := range s.EndpointSpec.Ports {
		p := &s.EndpointSpec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = swarm.PortConfigProtocolTCP
		}
		if p.PublishMode == "" {
			p.PublishMode = swarm.PortConfigPublishModeIngress
		}
	}
	sort.SliceStable(s.EndpointSpec.Ports, func(i, j int) bool {
		a, b := s.EndpointSpec.Ports[i], s.EndpointSpec.Ports[j]
		if a.PublishedPort != b.PublishedPort {
			return a.PublishedPort < b.PublishedPort
		}
		if a.TargetPort != b.TargetPort {
			return a.TargetPort < b.TargetPort
		}
		return a.Protocol < b.Protocol
	})

	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a ServiceSpec always marshals
	}
	var tree map[string]any
	_ = json.Unmarshal(b, &tree)
	pruned, _ := prune(tree).(map[string]any)
	if pruned == nil {
		pruned = map[string]any{}
	}
	return pruned
}

func normalizeUpdate(u *swarm.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		return &swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionPause, Monitor: defaultMonitor, Order: swarm.UpdateOrderStopFirst}
	}
	c := *u
	if c.FailureAction == "" {
		c.FailureAction = swarm.UpdateFailureActionPause
	}
	if c.Monitor == 0 {
		c.Monitor = defaultMonitor
	}
	if c.Order == "" {
		c.Order = swarm.UpdateOrderStopFirst
	}
	return &c
}

func refKey[T *swarm.ConfigReference | *swarm.SecretReference](r T) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func deepCopySpec(s swarm.ServiceSpec) swarm.ServiceSpec {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var out swarm.ServiceSpec
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// prune removes zero values (nil, false, 0, "", empty maps and lists)
// recursively: the engine does not distinguish them from absent fields.
func prune(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := prune(e)
			if p == nil {
				delete(t, k)
				continue
			}
			t[k] = p
		}
		if len(t) == 0 {
			return nil
		}
		return t
	case []any:
		out := t[:0]
		for _, e := range t {
			p := prune(e)
			if p == nil {
				// An empty element keeps its place: position matters in lists.
				p = map[string]any{}
			}
			out = append(out, p)
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case bool:
		if !t {
			return nil
		}
	case float64:
		if t == 0 {
			return nil
		}
	case string:
		if t == "" {
			return nil
		}
	case nil:
		return nil
	}
	return v
}

// Diff lists the fields in which the current spec differs from the wanted
// one, in compose's vocabulary where there is one. Empty: nothing to do.
func Diff(current, want swarm.ServiceSpec, netNames map[string]string) []Change {
	a, b := normalize(current, netNames), normalize(want, netNames)
	var paths []string
	diffTree("", a, b, &paths)
	seen := map[string]bool{}
	var out []Change
	for _, p := range paths {
		field := fieldName(p)
		if seen[field] {
			continue
		}
		seen[field] = true
		c := Change{Field: field}
		switch field {
		case "image":
			c.From, c.To = current.TaskTemplate.ContainerSpec.Image, want.TaskTemplate.ContainerSpec.Image
		case "replicas":
			c.From, c.To = replicasString(current.Mode), replicasString(want.Mode)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}

func replicasString(m swarm.ServiceMode) string {
	if m.Replicated != nil && m.Replicated.Replicas != nil {
		return fmt.Sprint(*m.Replicated.Replicas)
	}
	if m.Replicated != nil {
		return "1"
	}
	return "-"
}

func diffTree(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffTree(p, am[k], bm[k], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, path)
	}
}

// fieldNames maps spec paths to the compose keys a person wrote; the
// longest matching prefix wins.
var fieldNames = []struct{ prefix, name string }{
	{"Labels", "deploy.labels"},
	{"TaskTemplate.ContainerSpec.Image", "image"},
	{"TaskTemplate.ContainerSpec.Command", "entrypoint"},
	{"TaskTemplate.ContainerSpec.Args", "command"},
	{"TaskTemplate.ContainerSpec.Env", "environment"},
	{"TaskTemplate.ContainerSpec.Labels", "labels"},
	{"TaskTemplate.ContainerSpec.Mounts", "volumes"},
	{"TaskTemplate.ContainerSpec.Configs", "configs"},
	{"TaskTemplate.ContainerSpec.Secrets", "secrets"},
	{"TaskTemplate.ContainerSpec.Healthcheck", "healthcheck"},
	{"TaskTemplate.ContainerSpec.Hostname", "hostname"},
	{"TaskTemplate.ContainerSpec.User", "user"},
	{"TaskTemplate.ContainerSpec.Dir", "working_dir"},
	{"TaskTemplate.ContainerSpec.StopGracePeriod", "stop_grace_period"},
	{"TaskTemplate.ContainerSpec.StopSignal", "stop_signal"},
	{"TaskTemplate.ContainerSpec.Init", "init"},
	{"TaskTemplate.ContainerSpec.CapabilityAdd", "cap_add"},
	{"TaskTemplate.ContainerSpec.CapabilityDrop", "cap_drop"},
	{"TaskTemplate.ContainerSpec.Sysctls", "sysctls"},
	{"TaskTemplate.ContainerSpec.Ulimits", "ulimits"},
	{"TaskTemplate.ContainerSpec.Hosts", "extra_hosts"},
	{"TaskTemplate.ContainerSpec.DNSConfig", "dns"},
	{"TaskTemplate.ContainerSpec.Groups", "group_add"},
	{"TaskTemplate.ContainerSpec.ReadOnly", "read_only"},
	{"TaskTemplate.ContainerSpec.TTY", "tty"},
	{"TaskTemplate.ContainerSpec.OpenStdin", "stdin_open"},
	{"TaskTemplate.ContainerSpec.Isolation", "isolation"},
	{"TaskTemplate.ContainerSpec.OomScoreAdj", "oom_score_adj"},
	{"TaskTemplate.ContainerSpec", "container"},
	{"TaskTemplate.Resources", "deploy.resources"},
	{"TaskTemplate.RestartPolicy", "deploy.restart_policy"},
	{"TaskTemplate.Placement", "deploy.placement"},
	{"TaskTemplate.Networks", "networks"},
	{"TaskTemplate.LogDriver", "logging"},
	{"TaskTemplate.ForceUpdate", "force_update"},
	{"Mode.Replicated.Replicas", "replicas"},
	{"Mode.ReplicatedJob", "replicas"},
	{"Mode", "deploy.mode"},
	{"UpdateConfig", "deploy.update_config"},
	{"RollbackConfig", "deploy.rollback_config"},
	{"EndpointSpec.Ports", "ports"},
	{"EndpointSpec.Mode", "deploy.endpoint_mode"},
}

func fieldName(path string) string {
	best, bestLen := path, -1
	for _, f := range fieldNames {
		if (path == f.prefix || strings.HasPrefix(path, f.prefix+".")) && len(f.prefix) > bestLen {
			best, bestLen = f.name, len(f.prefix)
		}
	}
	return best
}

// Images lists the images the stack's services run after this plan (every
// service but those removed), as names without a pinned digest, sorted and
// without repeats: what `deploy --push-images` copies to the nodes.
func (p *Plan) Images() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range p.Services {
		if s.Action == ActionRemove || s.Image == "" {
			continue
		}
		img := imageWithoutDigest(familiarImage(s.Image))
		if !seen[img] {
			seen[img] = true
			out = append(out, img)
		}
	}
	sort.Strings(out)
	return out
}
