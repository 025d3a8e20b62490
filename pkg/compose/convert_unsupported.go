package compose

import (
	"github.com/compose-spec/compose-go/v2/types"
)

// unsupported warns once for every service option that Swarm cannot
// honour; the option is ignored. Options that are mapped to something
// Swarm does (restart, scale) warn where they are converted.
func (c *converter) unsupported(s types.ServiceConfig) {
	type opt struct {
		name string
		set  bool
		why  string
	}
	opts := []opt{
		{"build", s.Build != nil, "Swarm cannot build; the image must exist"},
		{"container_name", s.ContainerName != "", "Swarm names containers itself"},
		{"privileged", s.Privileged, "Swarm services cannot be privileged"},
		{"network_mode", s.NetworkMode != "", "services attach to networks instead"},
		{"links", len(s.Links) > 0, "services on a network reach each other by name"},
		{"external_links", len(s.ExternalLinks) > 0, "services on a network reach each other by name"},
		{"devices", len(s.Devices) > 0, "Swarm cannot map devices"},
		{"device_cgroup_rules", len(s.DeviceCgroupRules) > 0, ""},
		{"cgroup_parent", s.CgroupParent != "", ""},
		{"cgroup", s.Cgroup != "", ""},
		{"ipc", s.Ipc != "", ""},
		{"pid", s.Pid != "", ""},
		{"uts", s.Uts != "", ""},
		{"userns_mode", s.UserNSMode != "", ""},
		{"security_opt", len(s.SecurityOpt) > 0, ""},
		{"shm_size", s.ShmSize != 0, "use a tmpfs volume on /dev/shm"},
		{"tmpfs", len(s.Tmpfs) > 0, "use a volume of type tmpfs"},
		{"mac_address", s.MacAddress != "", ""},
		{"domainname", s.DomainName != "", ""},
		{"volumes_from", len(s.VolumesFrom) > 0, ""},
		{"volume_driver", s.VolumeDriver != "", "set the driver on the top-level volume"},
		{"storage_opt", len(s.StorageOpt) > 0, ""},
		{"runtime", s.Runtime != "", ""},
		{"platform", s.Platform != "", "use deploy.placement.constraints on node.platform"},
		{"pull_policy", s.PullPolicy != "", "nodes pull when they lack the image; see --resolve-image"},
		{"gpus", len(s.Gpus) > 0, "use deploy.resources.reservations.generic_resources"},
		{"blkio_config", s.BlkioConfig != nil, ""},
		{"cpu_count", s.CPUCount != 0, ""},
		{"cpu_percent", s.CPUPercent != 0, ""},
		{"cpu_period", s.CPUPeriod != 0, ""},
		{"cpu_quota", s.CPUQuota != 0, ""},
		{"cpu_rt_period", s.CPURTPeriod != 0, ""},
		{"cpu_rt_runtime", s.CPURTRuntime != 0, ""},
		{"cpu_shares", s.CPUShares != 0, ""},
		{"cpuset", s.CPUSet != "", ""},
		{"cpus", s.CPUS != 0, "use deploy.resources.limits.cpus"},
		{"mem_limit", s.MemLimit != 0, "use deploy.resources.limits.memory"},
		{"mem_reservation", s.MemReservation != 0, "use deploy.resources.reservations.memory"},
		{"memswap_limit", s.MemSwapLimit != 0, ""},
		{"mem_swappiness", s.MemSwappiness != 0, ""},
		{"oom_kill_disable", s.OomKillDisable, ""},
		{"pids_limit", s.PidsLimit != 0, "use deploy.resources.limits.pids"},
		{"credential_spec", s.CredentialSpec != nil, "Windows only"},
		{"annotations", len(s.Annotations) > 0, ""},
		{"use_api_socket", s.UseAPISocket, ""},
		{"umask", s.Umask != nil, ""},
		{"expose", len(s.Expose) > 0, "every port is reachable on the stack's networks anyway"},
		{"develop", s.Develop != nil, ""},
		{"provider", s.Provider != nil, ""},
		{"models", len(s.Models) > 0, ""},
		{"post_start", len(s.PostStart) > 0, ""},
		{"pre_stop", len(s.PreStop) > 0, ""},
		{"pre_start", len(s.PreStart) > 0, ""},
		{"attach", s.Attach != nil, ""},
	}
	for _, o := range opts {
		if !o.set {
			continue
		}
		msg := "services." + s.Name + "." + o.name + ": not supported by Swarm; ignored"
		if o.why != "" {
			msg += " (" + o.why + ")"
		}
		c.warnf("%s", msg)
	}
}
