package mesh

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/internal/textutil"
	"github.com/microctl/microctl/pkg/doctor"
)

// ServicesAPI is what the doctor's mesh checks read from the engine.
type ServicesAPI interface {
	EngineAPI
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
}

// labelNamespace is the stack label docker stack and microctl put on a
// stack's services.
const labelNamespace = "com.docker.stack.namespace"

// DoctorProbe checks every stack's mesh services: instances whose task is
// gone (mesh.orphans) and running tasks that never registered
// (mesh.silent). What it cannot see (Consul down, an engine that is no
// manager) is a warning with the reason, never an ok.
func DoctorProbe(eng ServicesAPI, consul ConsulAPI) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		checks := []string{"mesh.orphans", "mesh.silent"}
		services, err := eng.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", labelNamespace))})
		if err != nil {
			return warnAll(checks, "cannot list the stacks' services: "+oneLine(err), "")
		}
		var meshSvcs []Service
		var unseen []string
		for _, s := range services {
			svc, _, err := Resolve(ctx, eng, consul, s.Spec.Name, s.ID, s.Spec.Labels)
			if err != nil {
				if Unreachable(err) {
					return warnAll(checks, "cannot see Consul: "+oneLine(err), doctor.HintOf(err))
				}
				unseen = append(unseen, fmt.Sprintf("%s: %s", s.Spec.Name, oneLine(err)))
				continue
			}
			if svc.Consul != "" {
				meshSvcs = append(meshSvcs, svc)
			}
		}
		c := NewChecker(eng, consul, CheckerOptions{})
		var orphans, silent []string
		for _, svc := range meshSvcs {
			r, err := c.Inspect(ctx, svc)
			if err != nil {
				if Unreachable(err) {
					return warnAll(checks, "cannot see Consul: "+oneLine(err), doctor.HintOf(err))
				}
				unseen = append(unseen, fmt.Sprintf("%s: %s", svc.Name, oneLine(err)))
				continue
			}
			for _, p := range r.Problems {
				switch p.Kind {
				case "orphan-instance":
					orphans = append(orphans, fmt.Sprintf("%s (%s)", p.Detail, svc.Consul))
				case "silent-task":
					silent = append(silent, fmt.Sprintf("%s: %s", svc.Name, p.Detail))
				}
			}
		}
		scope := fmt.Sprintf("%d mesh service(s) of %d stack service(s)", len(meshSvcs), len(services))
		res := []doctor.Result{
			verdict("mesh.orphans", orphans, unseen, scope, "no instance without a running task",
				"deregister them through their agent: microctl registry deregister (or redeploy: deploy removes stale instances of its services)"),
			verdict("mesh.silent", silent, unseen, scope, "every running task is registered",
				"the task runs but is not in the registry: check its registry address and its logs (docker service logs)"),
		}
		return res
	}
}

func verdict(check string, problems, unseen []string, scope, okText, hint string) doctor.Result {
	switch {
	case len(problems) > 0:
		return doctor.Result{Check: check, Status: doctor.Fail, Detail: strings.Join(problems, "; "), Hint: hint}
	case len(unseen) > 0:
		return doctor.Result{Check: check, Status: doctor.Warn, Detail: "could not check " + strings.Join(unseen, "; ")}
	}
	return doctor.Result{Check: check, Status: doctor.OK, Detail: okText + " (" + scope + ")"}
}

func warnAll(checks []string, detail, hint string) []doctor.Result {
	out := make([]doctor.Result, 0, len(checks))
	for _, c := range checks {
		out = append(out, doctor.Result{Check: c, Status: doctor.Warn, Detail: detail, Hint: hint})
	}
	return out
}

func oneLine(err error) string { return textutil.OneLine(err.Error()) }
