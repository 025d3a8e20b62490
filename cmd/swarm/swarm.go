// Package swarm implements `microctl swarm`: init, join, status, token and
// leave. The work is done in pkg/swarm; these commands parse, validate and
// render.
package swarm

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// NewCmdSwarm is the `microctl swarm` group.
func NewCmdSwarm(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Initialise a Docker Swarm, join nodes, show its state",
		Long: `Initialise a Docker Swarm with the overlay network go-micro services share,
join nodes to it, show its nodes and networks, print join tokens, leave it.

Every command talks to the Docker Engine named by DOCKER_HOST (or
--docker-host; DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for TLS), the local
engine by default.`,
	}
	cmd.AddCommand(
		NewCmdInit(f, nil),
		NewCmdJoin(f, nil),
		NewCmdStatus(f, nil),
		NewCmdToken(f, nil),
		NewCmdLeave(f, nil),
	)
	return cmd
}

// asUsage turns errors that are bad input found by pkg/swarm (an address
// that names no interface, a spec that cannot be) into usage errors, so
// they exit 2 like any other bad flag value.
func asUsage(err error) error {
	var ae *sw.AddrError
	var se *sw.SpecError
	if errors.As(err, &ae) || errors.As(err, &se) {
		return &cmdutil.UsageError{Err: err}
	}
	return err
}
