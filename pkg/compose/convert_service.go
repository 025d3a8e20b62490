package compose

import (
	"fmt"
	"maps"
	"math/big"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/versions"
)

// service converts one compose service. The result follows docker/cli's
// cli/compose/convert/service.go field by field, so a stack deployed by
// either tool is "unchanged" for the other.
func (c *converter) service(s types.ServiceConfig) (Service, error) {
	c.unsupported(s)
	deploy := s.Deploy
	if deploy == nil {
		deploy = &types.DeployConfig{}
	}
	if s.Image == "" {
		if s.Build != nil {
			return Service{}, fmt.Errorf("has build but no image: Swarm cannot build; build the image first and name it in the image key")
		}
		return Service{}, fmt.Errorf("needs an image")
	}

	mode, err := c.mode(s, deploy)
	if err != nil {
		return Service{}, err
	}
	ports, err := c.ports(s)
	if err != nil {
		return Service{}, err
	}
	mounts, err := c.mounts(s)
	if err != nil {
		return Service{}, err
	}
	resources, err := c.resources(s.Name, deploy.Resources)
	if err != nil {
		return Service{}, err
	}
	restart, err := c.restartPolicy(s, deploy.RestartPolicy)
	if err != nil {
		return Service{}, err
	}
	health, err := c.healthcheck(s)
	if err != nil {
		return Service{}, err
	}
	nets, err := c.serviceNetworks(s)
	if err != nil {
		return Service{}, err
	}
	capAdd, capDrop := effectiveCaps(s.CapAdd, s.CapDrop)

	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{
			Name:   c.scope(s.Name),
			Labels: c.labels(deploy.Labels),
		},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           s.Image,
				Command:         []string(s.Entrypoint),
				Args:            []string(s.Command),
				Hostname:        s.Hostname,
				Hosts:           extraHosts(s.ExtraHosts),
				DNSConfig:       dnsConfig(s),
				Healthcheck:     health,
				Env:             environment(s.Environment),
				Labels:          c.labels(s.Labels),
				Dir:             s.WorkingDir,
				User:            s.User,
				Groups:          s.GroupAdd,
				Mounts:          mounts,
				StopGracePeriod: durationPtr(s.StopGracePeriod),
				StopSignal:      s.StopSignal,
				TTY:             s.Tty,
				OpenStdin:       s.StdinOpen,
				Secrets:         c.secretRefs(s.Secrets),
				Configs:         c.configRefs(s.Configs),
				ReadOnly:        s.ReadOnly,
				Isolation:       container.Isolation(s.Isolation),
				Init:            s.Init,
				Sysctls:         map[string]string(s.Sysctls),
				CapabilityAdd:   capAdd,
				CapabilityDrop:  capDrop,
				Ulimits:         ulimits(s.Ulimits),
			},
			LogDriver:     logDriver(s),
			Resources:     resources,
			RestartPolicy: restart,
			Placement: &swarm.Placement{
				Constraints: deploy.Placement.Constraints,
				Preferences: placementPreferences(deploy.Placement.Preferences),
				MaxReplicas: deploy.Placement.MaxReplicas,
			},
			Networks: nets,
		},
		EndpointSpec: &swarm.EndpointSpec{
			Mode:  swarm.ResolutionMode(strings.ToLower(deploy.EndpointMode)),
			Ports: ports,
		},
		Mode:           mode,
		UpdateConfig:   updateConfig(deploy.UpdateConfig),
		RollbackConfig: updateConfig(deploy.RollbackConfig),
	}
	switch spec.EndpointSpec.Mode {
	case "", swarm.ResolutionModeVIP, swarm.ResolutionModeDNSRR:
	default:
		return Service{}, fmt.Errorf("deploy.endpoint_mode %q: must be vip or dnsrr", deploy.EndpointMode)
	}
	if spec.EndpointSpec.Mode == swarm.ResolutionModeDNSRR {
		for _, p := range ports {
			if p.PublishMode != swarm.PortConfigPublishModeHost {
				return Service{}, fmt.Errorf("deploy.endpoint_mode dnsrr cannot publish port %d in ingress mode: use mode: host", p.TargetPort)
			}
		}
	}
	if s.OomScoreAdj != 0 {
		if versions.LessThan(c.opts.APIVersion, "1.46") {
			c.warnf("services.%s.oom_score_adj: needs Engine API 1.46 (this engine speaks %s); ignored", s.Name, c.opts.APIVersion)
		} else {
			spec.TaskTemplate.ContainerSpec.OomScoreAdj = s.OomScoreAdj
		}
	}
	spec.Labels[LabelImage] = s.Image

	svc := Service{Name: s.Name, Spec: spec}
	for _, dep := range slices.Sorted(maps.Keys(s.DependsOn)) {
		cond := s.DependsOn[dep].Condition
		if cond == "" {
			cond = types.ServiceConditionStarted
		}
		svc.DependsOn = append(svc.DependsOn, Dependency{Service: dep, Condition: cond})
	}
	return svc, nil
}

func (c *converter) mode(s types.ServiceConfig, d *types.DeployConfig) (swarm.ServiceMode, error) {
	var replicas *uint64
	r := d.Replicas
	if r == nil {
		r = s.Scale
	}
	if r != nil {
		if *r < 0 {
			return swarm.ServiceMode{}, fmt.Errorf("deploy.replicas is negative (%d)", *r)
		}
		v := uint64(*r)
		replicas = &v
	}
	switch d.Mode {
	case "replicated", "":
		if replicas == nil {
			one := uint64(1)
			replicas = &one
		}
		return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: replicas}}, nil
	case "global":
		if d.Replicas != nil {
			return swarm.ServiceMode{}, fmt.Errorf("deploy.replicas can only be used with mode replicated or replicated-job")
		}
		return swarm.ServiceMode{Global: &swarm.GlobalService{}}, nil
	case "replicated-job":
		return swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: replicas, TotalCompletions: replicas}}, nil
	case "global-job":
		if d.Replicas != nil {
			return swarm.ServiceMode{}, fmt.Errorf("deploy.replicas can only be used with mode replicated or replicated-job")
		}
		return swarm.ServiceMode{GlobalJob: &swarm.GlobalJob{}}, nil
	}
	return swarm.ServiceMode{}, fmt.Errorf("deploy.mode %q: must be replicated, global, replicated-job or global-job", d.Mode)
}

func (c *converter) ports(s types.ServiceConfig) ([]swarm.PortConfig, error) {
	out := []swarm.PortConfig{}
	for _, p := range s.Ports {
		pc := swarm.PortConfig{
			Name:        p.Name,
			Protocol:    swarm.PortConfigProtocol(p.Protocol),
			TargetPort:  p.Target,
			PublishMode: swarm.PortConfigPublishMode(p.Mode),
		}
		switch pc.PublishMode {
		case "", swarm.PortConfigPublishModeIngress, swarm.PortConfigPublishModeHost:
		default:
			return nil, fmt.Errorf("port %d: mode %q must be ingress or host", p.Target, p.Mode)
		}
		if p.HostIP != "" {
			c.warnf("services.%s.ports: host_ip %s is not supported by Swarm; the port is published on every address", s.Name, p.HostIP)
		}
		if p.AppProtocol != "" {
			c.warnf("services.%s.ports: app_protocol is not supported by Swarm; ignored", s.Name)
		}
		if p.Published != "" {
			n, err := strconv.ParseUint(p.Published, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("port %d: published %q: Swarm publishes single ports, not ranges", p.Target, p.Published)
			}
			pc.PublishedPort = uint32(n)
		}
		out = append(out, pc)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].PublishedPort < out[j].PublishedPort })
	return out, nil
}

func (c *converter) serviceNetworks(s types.ServiceConfig) ([]swarm.NetworkAttachmentConfig, error) {
	nets := []swarm.NetworkAttachmentConfig{}
	for _, key := range slices.Sorted(maps.Keys(s.Networks)) {
		nc := s.Networks[key]
		nw, ok := c.p.Networks[key]
		if !ok {
			if key != "default" {
				return nil, fmt.Errorf("undefined network %q", key)
			}
			nw = types.NetworkConfig{Name: c.scope(key)}
		}
		a := swarm.NetworkAttachmentConfig{Target: nw.Name}
		if nc != nil {
			a.Aliases = append(a.Aliases, nc.Aliases...)
			a.DriverOpts = nc.DriverOpts
			if nc.Ipv4Address != "" || nc.Ipv6Address != "" {
				c.warnf("services.%s.networks.%s: static ipv4_address/ipv6_address are not supported by Swarm; ignored", s.Name, key)
			}
		}
		if container.NetworkMode(a.Target).IsUserDefined() {
			a.Aliases = append(a.Aliases, s.Name)
		}
		nets = append(nets, a)
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Target < nets[j].Target })
	return nets, nil
}

func (c *converter) mounts(s types.ServiceConfig) ([]mount.Mount, error) {
	out := make([]mount.Mount, 0, len(s.Volumes))
	for _, v := range s.Volumes {
		m := mount.Mount{
			Type:        mount.Type(v.Type),
			Source:      v.Source,
			Target:      v.Target,
			ReadOnly:    v.ReadOnly,
			Consistency: mount.Consistency(v.Consistency),
		}
		switch v.Type {
		case types.VolumeTypeVolume, "":
			m.Type = mount.TypeVolume
			if v.Source != "" {
				vol, ok := c.p.Volumes[v.Source]
				if !ok {
					return nil, fmt.Errorf("volume %s: undefined volume %q", v.Target, v.Source)
				}
				m.Source = vol.Name
				m.VolumeOptions = &mount.VolumeOptions{}
				if v.Volume != nil {
					m.VolumeOptions.NoCopy = v.Volume.NoCopy
					if v.Volume.Subpath != "" {
						c.warnf("services.%s.volumes: volume subpath needs Engine API 1.45; ignored", s.Name)
					}
				}
				if !vol.External {
					m.VolumeOptions.Labels = c.labels(vol.Labels)
					if vol.Driver != "" || vol.DriverOpts != nil {
						m.VolumeOptions.DriverConfig = &mount.Driver{Name: vol.Driver, Options: vol.DriverOpts}
					}
				}
			} else if v.Volume != nil && v.Volume.NoCopy {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
			}
		case types.VolumeTypeBind:
			if v.Source == "" {
				return nil, fmt.Errorf("bind mount %s: source cannot be empty", v.Target)
			}
			if v.Bind != nil && v.Bind.Propagation != "" {
				m.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(v.Bind.Propagation)}
			}
		case types.VolumeTypeTmpfs:
			if v.Source != "" {
				return nil, fmt.Errorf("tmpfs mount %s: source must be empty", v.Target)
			}
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: fileMode(v.Tmpfs.Mode)}
			}
		case types.VolumeTypeNamedPipe:
			c.warnf("services.%s.volumes: npipe mounts work on Windows nodes only", s.Name)
		default:
			c.warnf("services.%s.volumes: mount type %s is not supported by Swarm here; ignored", s.Name, v.Type)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func (c *converter) resources(service string, r types.Resources) (*swarm.ResourceRequirements, error) {
	res := &swarm.ResourceRequirements{}
	if r.Limits != nil {
		cpus, err := nanoCPUs(r.Limits.NanoCPUs)
		if err != nil {
			return nil, fmt.Errorf("deploy.resources.limits.cpus: %w", err)
		}
		res.Limits = &swarm.Limit{NanoCPUs: cpus, MemoryBytes: int64(r.Limits.MemoryBytes), Pids: r.Limits.Pids}
		if len(r.Limits.Devices) > 0 || len(r.Limits.GenericResources) > 0 {
			c.warnf("services.%s.deploy.resources.limits: devices and generic_resources are reservations in Swarm; ignored", service)
		}
	}
	if r.Reservations != nil {
		cpus, err := nanoCPUs(r.Reservations.NanoCPUs)
		if err != nil {
			return nil, fmt.Errorf("deploy.resources.reservations.cpus: %w", err)
		}
		var generic []swarm.GenericResource
		for _, g := range r.Reservations.GenericResources {
			var gr swarm.GenericResource
			if g.DiscreteResourceSpec != nil {
				gr.DiscreteResourceSpec = &swarm.DiscreteGenericResource{Kind: g.DiscreteResourceSpec.Kind, Value: g.DiscreteResourceSpec.Value}
			}
			generic = append(generic, gr)
		}
		res.Reservations = &swarm.Resources{NanoCPUs: cpus, MemoryBytes: int64(r.Reservations.MemoryBytes), GenericResources: generic}
		if len(r.Reservations.Devices) > 0 {
			c.warnf("services.%s.deploy.resources.reservations.devices: not supported by Swarm; ignored (use generic_resources)", service)
		}
		if r.Reservations.Pids != 0 {
			c.warnf("services.%s.deploy.resources.reservations.pids: Swarm limits pids, it cannot reserve them; ignored", service)
		}
	}
	return res, nil
}

// nanoCPUs converts compose's float CPU count exactly, as docker's
// opts.ParseCPUs does with a rational (0.1 CPU is 100000000, not 100000001).
func nanoCPUs(v types.NanoCPUs) (int64, error) {
	if v == 0 {
		return 0, nil
	}
	s := strconv.FormatFloat(float64(v), 'f', -1, 32)
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Sign() < 0 {
		return 0, fmt.Errorf("invalid value %s", s)
	}
	n := r.Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return 0, fmt.Errorf("value %s is too precise", s)
	}
	return n.Num().Int64(), nil
}

func (c *converter) restartPolicy(s types.ServiceConfig, rp *types.RestartPolicy) (*swarm.RestartPolicy, error) {
	if rp != nil {
		if s.Restart != "" {
			c.warnf("services.%s.restart: ignored, deploy.restart_policy applies", s.Name)
		}
		switch rp.Condition {
		case "", "none", "on-failure", "any":
		default:
			return nil, fmt.Errorf("deploy.restart_policy.condition %q: must be none, on-failure or any", rp.Condition)
		}
		return &swarm.RestartPolicy{
			Condition:   swarm.RestartPolicyCondition(rp.Condition),
			Delay:       durationPtr(rp.Delay),
			MaxAttempts: rp.MaxAttempts,
			Window:      durationPtr(rp.Window),
		}, nil
	}
	if s.Restart == "" {
		return nil, nil
	}
	// docker stack maps restart: the same way; the warning says how.
	name, count, _ := strings.Cut(s.Restart, ":")
	switch name {
	case "no":
		c.warnf("services.%s.restart: Swarm restarts tasks whatever restart: says; use deploy.restart_policy.condition: none", s.Name)
		return nil, nil
	case "always", "unless-stopped":
		c.warnf("services.%s.restart: %s is not a Swarm option; mapped to deploy.restart_policy.condition: any", s.Name, name)
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}, nil
	case "on-failure":
		attempts := uint64(0)
		if count != "" {
			n, err := strconv.ParseUint(count, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("restart %q: bad retry count", s.Restart)
			}
			attempts = n
		}
		c.warnf("services.%s.restart: on-failure is not a Swarm option; mapped to deploy.restart_policy.condition: on-failure", s.Name)
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: &attempts}, nil
	}
	return nil, fmt.Errorf("unknown restart policy %q", s.Restart)
}

func (c *converter) healthcheck(s types.ServiceConfig) (*container.HealthConfig, error) {
	h := s.HealthCheck
	if h == nil {
		return nil, nil
	}
	if h.Disable {
		if len(h.Test) != 0 && h.Test[0] != "NONE" {
			return nil, fmt.Errorf("healthcheck: test and disable cannot both be set")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	hc := &container.HealthConfig{Test: h.Test}
	if h.Timeout != nil {
		hc.Timeout = time.Duration(*h.Timeout)
	}
	if h.Interval != nil {
		hc.Interval = time.Duration(*h.Interval)
	}
	if h.StartPeriod != nil {
		hc.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		if versions.LessThan(c.opts.APIVersion, "1.44") {
			c.warnf("services.%s.healthcheck.start_interval: needs Engine API 1.44 (this engine speaks %s); ignored", s.Name, c.opts.APIVersion)
		} else {
			hc.StartInterval = time.Duration(*h.StartInterval)
		}
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc, nil
}

func updateConfig(u *types.UpdateConfig) *swarm.UpdateConfig {
	if u == nil {
		return nil
	}
	parallel := uint64(1)
	if u.Parallelism != nil {
		parallel = *u.Parallelism
	}
	return &swarm.UpdateConfig{
		Parallelism:     parallel,
		Delay:           time.Duration(u.Delay),
		FailureAction:   u.FailureAction,
		Monitor:         time.Duration(u.Monitor),
		MaxFailureRatio: u.MaxFailureRatio,
		Order:           u.Order,
	}
}

func placementPreferences(prefs []types.PlacementPreferences) []swarm.PlacementPreference {
	out := []swarm.PlacementPreference{}
	for _, p := range prefs {
		out = append(out, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: p.Spread}})
	}
	return out
}

func logDriver(s types.ServiceConfig) *swarm.Driver {
	if s.Logging != nil {
		return &swarm.Driver{Name: s.Logging.Driver, Options: s.Logging.Options}
	}
	if s.LogDriver != "" || len(s.LogOpt) > 0 {
		return &swarm.Driver{Name: s.LogDriver, Options: s.LogOpt}
	}
	return nil
}

// environment is sorted KEY=value; a variable without a value (and none in
// the environment either) is passed as a bare KEY, like docker does.
func environment(env types.MappingWithEquals) []string {
	var out []string
	for k, v := range env {
		if v == nil {
			out = append(out, k)
			continue
		}
		out = append(out, k+"="+*v)
	}
	sort.Strings(out)
	return out
}

// extraHosts converts host:ip to Swarm's "IP host" notation, sorted.
func extraHosts(h types.HostsList) []string {
	var out []string
	for _, host := range slices.Sorted(maps.Keys(h)) {
		for _, ip := range h[host] {
			out = append(out, ip+" "+host)
		}
	}
	return out
}

func dnsConfig(s types.ServiceConfig) *swarm.DNSConfig {
	if s.DNS == nil && s.DNSSearch == nil && s.DNSOpts == nil {
		return nil
	}
	return &swarm.DNSConfig{Nameservers: s.DNS, Search: s.DNSSearch, Options: s.DNSOpts}
}

func ulimits(u map[string]*types.UlimitsConfig) []*container.Ulimit {
	out := make([]*container.Ulimit, 0, len(u))
	for _, name := range slices.Sorted(maps.Keys(u)) {
		l := u[name]
		if l.Single != 0 {
			out = append(out, &container.Ulimit{Name: name, Soft: int64(l.Single), Hard: int64(l.Single)})
			continue
		}
		out = append(out, &container.Ulimit{Name: name, Soft: int64(l.Soft), Hard: int64(l.Hard)})
	}
	return out
}

// effectiveCaps normalises capability names (CAP_ prefix, upper case) and
// resolves ALL and overlaps the way docker/cli's opts.EffectiveCapAddCapDrop does.
func effectiveCaps(add, drop []string) (capAdd, capDrop []string) {
	norm := func(list []string) map[string]bool {
		m := map[string]bool{}
		for _, c := range list {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c != "ALL" && c != "RESET" && !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			m[c] = true
		}
		return m
	}
	a, d := norm(add), norm(drop)
	if a["ALL"] {
		a = map[string]bool{"ALL": true}
	}
	if d["ALL"] {
		d = map[string]bool{"ALL": true}
	}
	for c := range d {
		if !a[c] && c != "RESET" {
			capDrop = append(capDrop, c)
		}
	}
	for c := range a {
		if c != "RESET" {
			capAdd = append(capAdd, c)
		}
	}
	sort.Strings(capAdd)
	sort.Strings(capDrop)
	return capAdd, capDrop
}

func durationPtr(d *types.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	v := time.Duration(*d)
	return &v
}

func fileMode(m uint32) os.FileMode { return os.FileMode(m) }

func sortByName[T any](s []T, key func(T) string) {
	sort.SliceStable(s, func(i, j int) bool { return key(s[i]) < key(s[j]) })
}
