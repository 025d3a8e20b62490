package doctor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/registry"
)

// TestDoctorWithoutClients: when neither client can be built, every check
// the packages offer is still listed, in the same order, with the reason
// (no Docker or Consul is dialled).
func TestDoctorWithoutClients(t *testing.T) {
	ios, _, out, _ := cmdutil.Test()
	opts := &Options{IO: ios, Output: cmdutil.FormatTable, Timeout: 5 * time.Second,
		Docker: func() (client.APIClient, error) { return nil, errors.New("bad docker host") },
		Consul: func() (*registry.Client, error) { return nil, errors.New("bad consul address") }}
	err := run(context.Background(), opts)
	var ue *cmdutil.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnhealthyError (exit 3)", err)
	}
	want := []string{
		"fail docker.engine bad docker host",
		"skip docker.api no client",
		"skip docker.swarm no client",
		"fail docker.network bad docker host",
		"fail consul.agent bad consul address",
		"skip consul.leader no client",
		"skip consul.token no client",
		"skip registry.critical no Consul client",
		"skip registry.stale no Consul client",
		"skip registry.lint no Consul client",
		"skip keys.ring no Consul client",
		"skip keys.age no Consul client",
		"skip keys.next no Consul client",
		"skip mesh.orphans no Docker client",
		"skip mesh.silent no Docker client",
		"",
		"15 checks: 0 ok, 0 warning, 3 failed, 12 skipped",
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")[1:] // past the header
	for i := range lines {
		lines[i] = strings.Join(strings.Fields(lines[i]), " ")
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("doctor printed\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
