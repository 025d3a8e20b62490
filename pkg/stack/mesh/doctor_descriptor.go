package mesh

import "github.com/microctl/microctl/pkg/doctor"

// Doctor is what this package offers `microctl doctor`: the mesh checks,
// which need both clients, each built only when the probe runs. Without
// either the checks are skipped; docker.engine or consul.agent says why.
// The client types are parameters so this package need not import the
// Docker client or pin the Consul client's concrete type.
func Doctor[E ServicesAPI, C ConsulAPI](docker func() (E, error), consul func() (C, error)) []doctor.Descriptor {
	checks := []string{"mesh.orphans", "mesh.silent"}
	return []doctor.Descriptor{
		doctor.Lazy(checks, docker, doctor.SkipAll("no Docker client"), func(eng E) doctor.Probe {
			return doctor.Needs(checks, consul, doctor.SkipAll("no Consul client"), func(c C) doctor.Probe {
				return DoctorProbe(eng, c)
			})
		}),
	}
}
