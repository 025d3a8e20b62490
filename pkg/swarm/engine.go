package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/boundhttp"
	"github.com/microctl/microctl/internal/neterr"
)

// EngineUnreachableError means no Docker Engine answered at Host.
type EngineUnreachableError struct {
	Host string
	Err  error
}

func (e *EngineUnreachableError) Error() string {
	reason := neterr.Reason(e.Err)
	if client.IsErrConnectionFailed(e.Err) {
		// The client drops the dial error and says only "Cannot connect
		// to the Docker daemon at HOST. Is the docker daemon running?".
		reason = "connection failed"
	}
	return fmt.Sprintf("cannot reach the Docker Engine at %s: %s", e.Host, reason)
}
func (e *EngineUnreachableError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *EngineUnreachableError) Hint() string {
	return "is dockerd running? set --docker-host or DOCKER_HOST"
}

// NotManagerError means the command needs a swarm manager and this engine
// is not one (not in a swarm, or a worker).
type NotManagerError struct {
	Host  string
	State string // "inactive", "worker", "pending", "locked", "error"
}

func (e *NotManagerError) Error() string {
	switch e.State {
	case "inactive":
		return fmt.Sprintf("the Docker Engine at %s is not part of a swarm", e.Host)
	case "worker":
		return fmt.Sprintf("the Docker Engine at %s is a swarm worker, not a manager", e.Host)
	case "locked":
		return fmt.Sprintf("the swarm on the Docker Engine at %s is locked", e.Host)
	}
	return fmt.Sprintf("the Docker Engine at %s is not a swarm manager (state %s)", e.Host, e.State)
}

// Hint says what to do about it.
func (e *NotManagerError) Hint() string {
	switch e.State {
	case "inactive":
		return "run: microctl swarm init"
	case "worker":
		return "run the command against a manager: --docker-host or DOCKER_HOST"
	case "locked":
		return "unlock it with: docker swarm unlock"
	}
	return ""
}

// ClassifyEngine turns an error from the Docker client into an
// EngineUnreachableError when the engine did not answer, and otherwise
// returns it unchanged.
func ClassifyEngine(host string, err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	var ue *EngineUnreachableError
	if errors.As(err, &ue) {
		return err
	}
	// The bounded transport's verdicts name the engine's address already.
	var te *boundhttp.TimeoutError
	if errors.As(err, &te) {
		return te
	}
	var we *boundhttp.WrongPeerError
	if errors.As(err, &we) {
		return we
	}
	if client.IsErrConnectionFailed(err) || cerrdefs.IsUnavailable(err) || isDialError(err) ||
		errors.Is(err, context.DeadlineExceeded) {
		return &EngineUnreachableError{Host: host, Err: err}
	}
	return err
}

func isDialError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "dial unix") || strings.Contains(msg, "dial tcp") ||
		strings.Contains(msg, "Cannot connect to the Docker daemon")
}

// InfoAPI is the part of the Docker client RequireManager needs.
type InfoAPI interface {
	Info(ctx context.Context) (system.Info, error)
	DaemonHost() string
}

// RequireManager returns the engine's info when it is an active swarm
// manager, and otherwise a NotManagerError (or EngineUnreachableError) that
// says what to do. Every command that changes swarm state calls it first,
// so a worker or a stray engine is refused before anything is touched.
func RequireManager(ctx context.Context, cli InfoAPI) (system.Info, error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return info, ClassifyEngine(cli.DaemonHost(), err)
	}
	sw := info.Swarm
	switch {
	case sw.LocalNodeState == swarm.LocalNodeStateActive && sw.ControlAvailable:
		return info, nil
	case sw.LocalNodeState == swarm.LocalNodeStateActive:
		return info, &NotManagerError{Host: cli.DaemonHost(), State: "worker"}
	}
	return info, &NotManagerError{Host: cli.DaemonHost(), State: string(sw.LocalNodeState)}
}
