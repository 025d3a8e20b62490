// Package cmdutil is the plumbing shared by microctl's commands: the
// dependency factory, I/O streams, output formats, connection flags and the
// errors that map to exit codes. Commands import it; pkg/ never does.
package cmdutil

import (
	"fmt"
	"strings"
	"sync"

	"github.com/docker/docker/client"

	"github.com/microctl/microctl/pkg/registry"
)

// Factory hands commands their dependencies. Clients are built on first
// use, so a command that needs no Consul never reads its configuration and
// never dials it (the gh CLI's cmdutil.Factory pattern).
type Factory struct {
	IOStreams *IOStreams

	ConsulFlags ConsulFlags
	DockerFlags DockerFlags

	// Consul returns the Consul client, built once.
	Consul func() (*registry.Client, error)
	// Docker returns the Docker Engine client, built once.
	Docker func() (client.APIClient, error)
}

// NewFactory returns a factory whose clients are configured from the
// environment and the root command's connection flags.
func NewFactory(ios *IOStreams) *Factory {
	f := &Factory{IOStreams: ios}
	f.Consul = sync.OnceValues(func() (*registry.Client, error) {
		return registry.NewClient(f.ConsulFlags.Config())
	})
	f.Docker = sync.OnceValues(func() (client.APIClient, error) {
		if f.DockerFlags.fs != nil && f.DockerFlags.fs.Changed("docker-host") {
			if err := validateDockerHost(f.DockerFlags.Host); err != nil {
				return nil, &UsageError{Err: err}
			}
		}
		c, err := client.NewClientWithOpts(f.DockerFlags.ClientOptions()...)
		if err != nil {
			return nil, fmt.Errorf("invalid Docker Engine configuration (DOCKER_HOST, DOCKER_CERT_PATH, --docker-host): %w", err)
		}
		return c, nil
	})
	return f
}

// AgentDialer returns a dialer for other nodes' Consul agents with the same
// token and TLS settings as the configured client (to deregister an
// instance through the agent that owns it).
func (f *Factory) AgentDialer() registry.AgentDialer {
	return func(addr string) (*registry.Client, error) {
		cfg := f.ConsulFlags.Config()
		if strings.HasPrefix(cfg.Address, "https://") {
			cfg.Scheme = "https"
		}
		cfg.Address = addr
		return registry.NewClient(cfg)
	}
}
