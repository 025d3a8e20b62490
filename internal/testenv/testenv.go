// Package testenv finds the Docker Engine and Consul agent that integration
// tests run against, and starts private Consul agents for tests that need
// one of their own (ACLs on, an empty catalog).
//
// When infrastructure is missing a test is skipped with the reason, except
// when MICROCTL_REQUIRE_INFRA=1 (set by `make test` and CI): then it fails,
// so a broken test environment can never pass as a green run.
//
// Tests that change swarm state call DockerChanges and run only with
// MICROCTL_IT_DOCKER=1; they clean up what they made and leave a swarm they
// found in place.
package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// RequireInfra reports whether missing infrastructure must fail the run.
func RequireInfra() bool { return os.Getenv("MICROCTL_REQUIRE_INFRA") == "1" }

// Missing skips t, or fails it under MICROCTL_REQUIRE_INFRA=1.
func Missing(t testing.TB, format string, a ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, a...)
	if RequireInfra() {
		t.Fatalf("MICROCTL_REQUIRE_INFRA=1 but %s (start it with scripts/testenv.sh up)", reason)
	}
	t.Skipf("%s (start it with scripts/testenv.sh up; eval \"$(scripts/testenv.sh env)\")", reason)
}

// Consul returns a client for the test environment's agent
// (CONSUL_HTTP_ADDR and the other CONSUL_* variables).
func Consul(t testing.TB) *registry.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Consul (-short)")
	}
	if os.Getenv(api.HTTPAddrEnvName) == "" {
		Missing(t, "CONSUL_HTTP_ADDR is not set")
	}
	c, err := registry.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if leader, err := c.Leader(ctx); err != nil || leader == "" {
		Missing(t, "no Consul agent with a leader at %s (err: %v)", c.Addr, err)
	}
	return c
}

var dockerOnce = sync.OnceValues(func() (client.APIClient, error) {
	return client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
})

// Docker returns a client for the test environment's engine.
func Docker(t testing.TB) client.APIClient {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Docker (-short)")
	}
	cli, err := dockerOnce()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		Missing(t, "no Docker Engine answers at %s: %v", cli.DaemonHost(), err)
	}
	return cli
}

// DockerChanges skips t unless MICROCTL_IT_DOCKER=1: the test changes what
// runs on the engine (swarm state, services, networks).
func DockerChanges(t testing.TB) client.APIClient {
	t.Helper()
	if os.Getenv("MICROCTL_IT_DOCKER") != "1" {
		t.Skip("changes Docker swarm state: set MICROCTL_IT_DOCKER=1 to run")
	}
	return Docker(t)
}

// Manager returns a client for an engine that is a swarm manager, for tests
// that deploy services. `scripts/testenv.sh up --swarm` (run by make test)
// makes the test engine one; a test never initialises or leaves the swarm
// itself, so packages running in parallel cannot pull it from under each
// other.
func Manager(t testing.TB) client.APIClient {
	t.Helper()
	cli := DockerChanges(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Swarm.ControlAvailable {
		Missing(t, "the Docker Engine at %s is not a swarm manager (state %s)", cli.DaemonHost(), info.Swarm.LocalNodeState)
	}
	return cli
}
