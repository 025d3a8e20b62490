package swarm

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stringid"

	"github.com/microctl/microctl/pkg/doctor"
)

// EngineAPI is what the engine checks need from the Docker client.
type EngineAPI interface {
	ServerVersion(ctx context.Context) (types.Version, error)
	Info(ctx context.Context) (system.Info, error)
	DaemonHost() string
	ClientVersion() string
}

// minAPIVersion is the oldest Engine API microctl is tested against
// (Debian bookworm's docker.io 20.10).
const minAPIVersion = "1.41"

// EngineProbe checks that the Docker Engine answers, speaks an API version
// microctl supports, and is a swarm manager.
func EngineProbe(cli EngineAPI) doctor.Probe {
	return func(ctx context.Context) []doctor.Result {
		host := cli.DaemonHost()
		v, err := cli.ServerVersion(ctx)
		if err != nil {
			err = ClassifyEngine(host, err)
			return append([]doctor.Result{{
				Check: "docker.engine", Status: doctor.Fail, Detail: err.Error(),
				Hint: doctor.HintOf(err),
			}}, doctor.Skipped("engine unreachable", "docker.api", "docker.swarm")...)
		}
		res := []doctor.Result{{
			Check: "docker.engine", Status: doctor.OK,
			Detail: fmt.Sprintf("Docker Engine %s at %s", v.Version, host),
		}, apiVersionResult(v.APIVersion, v.MinAPIVersion, cli.ClientVersion())}

		info, err := cli.Info(ctx)
		if err != nil {
			err = ClassifyEngine(host, err)
			return append(res, doctor.Result{Check: "docker.swarm", Status: doctor.Fail, Detail: err.Error(), Hint: doctor.HintOf(err)})
		}
		return append(res, SwarmResult(host, info))
	}
}

func apiVersionResult(server, serverMin, negotiated string) doctor.Result {
	r := doctor.Result{Check: "docker.api",
		Detail: fmt.Sprintf("API %s (microctl uses %s, engine accepts %s and later)", server, negotiated, serverMin)}
	if versions.LessThan(server, minAPIVersion) {
		r.Status = doctor.Fail
		r.Hint = "microctl needs Engine API " + minAPIVersion + " (Docker 20.10) or later"
		return r
	}
	r.Status = doctor.OK
	return r
}

// SwarmResult judges the engine's swarm membership. Not being in a swarm is
// a warning, not a failure: Consul and the registry commands still work.
func SwarmResult(host string, info system.Info) doctor.Result {
	r := doctor.Result{Check: "docker.swarm"}
	sw := info.Swarm
	switch sw.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if sw.ControlAvailable {
			r.Status = doctor.OK
			r.Detail = fmt.Sprintf("manager of swarm %s (%d nodes, %d managers)", shortID(sw.Cluster), sw.Nodes, sw.Managers)
		} else {
			r.Status = doctor.Warn
			r.Detail = "this node is a swarm worker: deploy and swarm commands need a manager"
			r.Hint = (&NotManagerError{State: "worker"}).Hint()
		}
	case swarm.LocalNodeStateInactive:
		r.Status = doctor.Warn
		r.Detail = "this engine is not part of a swarm"
		r.Hint = "run: microctl swarm init"
	case swarm.LocalNodeStateLocked:
		r.Status = doctor.Fail
		r.Detail = "the swarm is locked"
		r.Hint = "unlock it with: docker swarm unlock"
	case swarm.LocalNodeStatePending:
		r.Status = doctor.Warn
		r.Detail = "joining a swarm (pending)"
	default:
		r.Status = doctor.Fail
		r.Detail = fmt.Sprintf("swarm state %q: %s", sw.LocalNodeState, sw.Error)
	}
	return r
}

func shortID(c *swarm.ClusterInfo) string {
	if c == nil {
		return "?"
	}
	return stringid.TruncateID(c.ID)
}

// Doctor is what this package offers `microctl doctor`: the engine checks
// and the overlay network check, each building the Docker client only when
// it runs. A client that cannot be built fails the first check with the
// reason.
func Doctor(docker func() (client.APIClient, error)) []doctor.Descriptor {
	return []doctor.Descriptor{
		doctor.Lazy([]string{"docker.engine", "docker.api", "docker.swarm"}, docker, doctor.FailFirst,
			func(cli client.APIClient) doctor.Probe { return EngineProbe(cli) }),
		doctor.Lazy([]string{NetworkCheck}, docker, doctor.FailFirst,
			func(cli client.APIClient) doctor.Probe { return NetworkProbe(cli, DefaultNetworkName) }),
	}
}
