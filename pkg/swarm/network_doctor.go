package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"

	"github.com/microctl/microctl/pkg/doctor"
)

// NetworkProbeAPI is what NetworkProbe needs from the Docker client.
type NetworkProbeAPI interface {
	Info(ctx context.Context) (system.Info, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	DaemonHost() string
}

// NetworkCheck is the doctor check name of NetworkProbe.
const NetworkCheck = "docker.network"

// NetworkProbe checks that the overlay network name (usually "micro")
// exists as a swarm overlay that services and containers can attach to.
// Missing is a warning (swarm init creates it); a network of that name that
// is not a swarm overlay is a failure, because services deployed onto it
// would not reach each other across nodes.
func NetworkProbe(cli NetworkProbeAPI, name string) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		r := doctor.Result{Check: NetworkCheck}
		if _, err := RequireManager(ctx, cli); err != nil {
			r.Status, r.Detail = doctor.Skip, "needs a reachable swarm manager"
			return []doctor.Result{r}
		}
		same, err := networksNamed(ctx, cli, name)
		if err != nil {
			r.Status, r.Detail, r.Hint = doctor.Fail, err.Error(), doctor.HintOf(err)
			return []doctor.Result{r}
		}
		r = NetworkResultOf(name, same)
		return []doctor.Result{r}
	}
}

// NetworkResultOf judges the networks named name (pure; for NetworkProbe).
func NetworkResultOf(name string, same []network.Inspect) doctor.Result {
	r := doctor.Result{Check: NetworkCheck}
	switch {
	case len(same) == 0:
		r.Status = doctor.Warn
		r.Detail = fmt.Sprintf("overlay network %s is missing", name)
		r.Hint = fmt.Sprintf("run: microctl swarm init, or microctl network create %s", name)
	case len(same) > 1:
		r.Status = doctor.Fail
		r.Detail = fmt.Sprintf("%d networks are named %s", len(same), name)
		r.Hint = "remove the ones that are not swarm overlays (docker network ls)"
	case same[0].Driver != OverlayDriver || same[0].Scope != SwarmScope:
		r.Status = doctor.Fail
		r.Detail = fmt.Sprintf("network %s is a %s network (scope %s), not a swarm overlay", name, same[0].Driver, same[0].Scope)
		r.Hint = fmt.Sprintf("remove it (docker network rm %s) and run: microctl swarm init", name)
	default:
		o := NewOverlayNetwork(same[0])
		spec := NetworkSpec{Name: name, Attachable: o.Attachable, Encrypted: o.Encrypted, Internal: o.Internal}
		for _, s := range o.Subnets {
			spec.Pools = append(spec.Pools, IPAMPool{Subnet: s.Subnet})
		}
		r.Status = doctor.OK
		r.Detail = fmt.Sprintf("overlay network %s present (%s)", name, spec.Describe())
		if !o.Attachable {
			r.Status = doctor.Warn
			r.Hint = "standalone containers (docker run --network) cannot join it; recreate it with microctl network create " + name
		}
	}
	return r
}
