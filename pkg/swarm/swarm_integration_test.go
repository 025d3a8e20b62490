package swarm

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/doctor"
)

// These tests run against the shared test engine, a single-node swarm
// manager that other packages use at the same time: every name carries a
// random suffix, subnets are picked free, only what a test made is removed,
// and the swarm itself is never left.

func removeNetworkAtEnd(t *testing.T, cli client.APIClient, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if same, err := networksNamed(ctx, cli, name); err == nil {
			for _, n := range same {
				_ = cli.NetworkRemove(ctx, n.ID)
			}
		}
	})
}

func TestIntegrationEnsureNetwork(t *testing.T) {
	cli := testenv.Manager(t)
	ctx := context.Background()
	name := testenv.UniqueName("it3-net")
	subnet := testenv.FreeSubnet(t, cli)
	removeNetworkAtEnd(t, cli, name)
	spec := NetworkSpec{Name: name, Attachable: true, Encrypted: true, Labels: map[string]string{"microctl.test": "issue3"},
		Pools: []IPAMPool{{Subnet: subnet}}}

	created, err := EnsureNetwork(ctx, cli, spec)
	if err != nil || !created {
		t.Fatalf("first ensure: created=%v err=%v", created, err)
	}
	// What `docker network inspect` sees.
	got, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Driver != "overlay" || got.Scope != "swarm" || !got.Attachable || got.Internal || !IsEncrypted(got) ||
		len(got.IPAM.Config) != 1 || got.IPAM.Config[0].Subnet != subnet || got.Labels["microctl.test"] != "issue3" {
		t.Errorf("engine sees %+v", got)
	}

	// Twice: a no-op.
	if created, err := EnsureNetwork(ctx, cli, spec); err != nil || created {
		t.Fatalf("second ensure: created=%v err=%v", created, err)
	}

	// A different network with that name is refused, naming each difference.
	other := spec
	other.Encrypted = false
	other.Pools = []IPAMPool{{Subnet: testenv.FreeSubnet(t, cli)}}
	_, err = EnsureNetwork(ctx, cli, other)
	var ce *NetworkConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a conflict", err)
	}
	var fields []string
	for _, d := range ce.Diffs {
		fields = append(fields, d.Field)
	}
	if !reflect.DeepEqual(fields, []string{"subnet", "encrypted"}) {
		t.Errorf("differences %v (%v)", fields, err)
	}

	// A new network overlapping it is refused before anything is created.
	name2 := testenv.UniqueName("it3-overlap")
	removeNetworkAtEnd(t, cli, name2)
	p := netip.MustParsePrefix(subnet)
	half := netip.PrefixFrom(p.Addr(), 25).String()
	_, err = EnsureNetwork(ctx, cli, NetworkSpec{Name: name2, Attachable: true, Pools: []IPAMPool{{Subnet: half}}})
	var oe *SubnetOverlapError
	if !errors.As(err, &oe) || oe.Overlaps[0].Network != name {
		t.Fatalf("err = %v, want an overlap with %s", err, name)
	}
	if same, _ := networksNamed(ctx, cli, name2); len(same) != 0 {
		t.Errorf("overlapping network was created anyway")
	}

	// Internal, not attachable, with gateway and range: as the engine sees it.
	name3 := testenv.UniqueName("it3-internal")
	removeNetworkAtEnd(t, cli, name3)
	sub3 := testenv.FreeSubnet(t, cli)
	p3 := netip.MustParsePrefix(sub3)
	gw := p3.Addr().Next().String()
	rng := netip.PrefixFrom(netip.AddrFrom4([4]byte{p3.Addr().As4()[0], p3.Addr().As4()[1], p3.Addr().As4()[2], 128}), 25).String()
	spec3 := NetworkSpec{Name: name3, Internal: true, Pools: []IPAMPool{{Subnet: sub3, Gateway: gw, IPRange: rng}}}
	if created, err := EnsureNetwork(ctx, cli, spec3); err != nil || !created {
		t.Fatalf("internal: created=%v err=%v", created, err)
	}
	if got, err = cli.NetworkInspect(ctx, name3, network.InspectOptions{}); err != nil || len(got.IPAM.Config) != 1 {
		t.Fatalf("inspect %s: %+v, %v", name3, got, err)
	}
	if !got.Internal || got.Attachable || IsEncrypted(got) || got.IPAM.Config[0].Gateway != gw || got.IPAM.Config[0].IPRange != rng {
		t.Errorf("engine sees %+v", got)
	}
	if created, err := EnsureNetwork(ctx, cli, spec3); err != nil || created {
		t.Errorf("internal again: created=%v err=%v", created, err)
	}
}

func TestIntegrationNetworkInUse(t *testing.T) {
	cli := testenv.Manager(t)
	ctx := context.Background()
	name := testenv.UniqueName("it3-inuse")
	removeNetworkAtEnd(t, cli, name)
	if _, err := EnsureNetwork(ctx, cli, NetworkSpec{Name: name, Attachable: true}); err != nil {
		t.Fatal(err)
	}
	// A service with no replicas: attached to the network, but no task,
	// so no image is needed or pulled.
	zero := uint64(0)
	svcName := testenv.UniqueName("it3-svc")
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: svcName},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "microctl/none:it3"},
			Networks: []swarm.NetworkAttachmentConfig{{Target: name}}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}}
	resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ServiceRemove(context.Background(), resp.ID) })

	nets, err := ListOverlays(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range nets {
		if n.Name == name {
			found = true
			if !reflect.DeepEqual(n.Services, []string{svcName}) {
				t.Errorf("ls: services %v, want [%s]", n.Services, svcName)
			}
		}
	}
	if !found {
		t.Errorf("ls does not list %s", name)
	}
	_, err = RemoveOverlay(ctx, cli, name)
	var iu *NetworkInUseError
	if !errors.As(err, &iu) || !reflect.DeepEqual(iu.Services, []string{svcName}) {
		t.Fatalf("rm while in use: %v", err)
	}
	if err := cli.ServiceRemove(ctx, resp.ID); err != nil {
		t.Fatal(err)
	}
	// The engine frees the network shortly after the service is gone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = RemoveOverlay(ctx, cli, name)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("rm after the service is gone: %v", err)
	}
	var nf *NetworkNotFoundError
	if _, err := InspectOverlay(ctx, cli, name); !errors.As(err, &nf) {
		t.Errorf("inspect after rm: %v", err)
	}
}

// Init on the shared manager: it reports the swarm, creates the missing
// network, and a second run changes nothing.
func TestIntegrationInitOnManagerTwice(t *testing.T) {
	cli := testenv.Manager(t)
	ctx := context.Background()
	name := testenv.UniqueName("it3-init")
	removeNetworkAtEnd(t, cli, name)
	o := InitOptions{Networks: []NetworkSpec{{Name: name, Attachable: true, Pools: []IPAMPool{{Subnet: testenv.FreeSubnet(t, cli)}}}}}
	res, err := Init(ctx, cli, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Initialised || res.SwarmID == "" || res.ManagerAddr == "" || ValidateJoinToken(res.JoinTokens.Worker) != nil ||
		ValidateJoinToken(res.JoinTokens.Manager) != nil || len(res.Networks) != 1 || !res.Networks[0].Created {
		t.Fatalf("first: %+v", res)
	}
	res2, err := Init(ctx, cli, o)
	if err != nil || res2.Initialised || res2.Networks[0].Created || res2.SwarmID != res.SwarmID ||
		res2.Networks[0].ID != res.Networks[0].ID || len(res2.Warnings) != 0 {
		t.Fatalf("second: %+v, %v", res2, err)
	}
}

// trapLeave is the real client with SwarmLeave replaced: the guard is
// tested on the real engine's counts, and a guard bug can never pull the
// shared swarm from under the other tests.
type trapLeave struct {
	client.APIClient
	t *testing.T
}

func (c trapLeave) SwarmLeave(ctx context.Context, force bool) error {
	c.t.Errorf("SwarmLeave(force=%v) called: the guard let the shared manager leave", force)
	return errors.New("trapped")
}

func TestIntegrationLeaveGuard(t *testing.T) {
	cli := testenv.Manager(t)
	ctx := context.Background()
	name := testenv.UniqueName("it3-leave")
	removeNetworkAtEnd(t, cli, name)
	if _, err := EnsureNetwork(ctx, cli, NetworkSpec{Name: name, Attachable: true}); err != nil {
		t.Fatal(err)
	}
	_, err := Leave(ctx, trapLeave{cli, t}, false)
	var lm *LastManagerError
	var ml *ManagerLeaveError
	switch {
	case errors.As(err, &lm):
		found := false
		for _, n := range lm.Plan.Networks {
			found = found || n == name
		}
		if !found {
			t.Errorf("the refusal does not count network %s: %v", name, err)
		}
	case errors.As(err, &ml):
		t.Logf("the shared engine has %d managers: %v", ml.Plan.Managers, err)
	default:
		t.Fatalf("err = %v, want a refusal", err)
	}
	info, err := cli.Info(ctx)
	if err != nil || !info.Swarm.ControlAvailable {
		t.Fatalf("the shared engine is no longer a manager: %+v %v", info.Swarm, err)
	}
}

func TestIntegrationStatusAndProbe(t *testing.T) {
	cli := testenv.Manager(t)
	ctx := context.Background()
	rep, err := Status(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	self := false
	for _, n := range rep.Nodes {
		self = self || n.Self && n.Role == "manager" && n.State == "ready"
	}
	if rep.SwarmID == "" || rep.Role != "manager" || !self || !rep.Healthy {
		t.Errorf("status %+v", rep)
	}

	name := testenv.UniqueName("it3-probe")
	removeNetworkAtEnd(t, cli, name)
	if r := NetworkProbe(cli, name)(ctx); r[0].Status != doctor.Warn {
		t.Errorf("missing network: %+v", r)
	}
	if _, err := EnsureNetwork(ctx, cli, NetworkSpec{Name: name, Attachable: true}); err != nil {
		t.Fatal(err)
	}
	if r := NetworkProbe(cli, name)(ctx); r[0].Status != doctor.OK {
		t.Errorf("present network: %+v", r)
	}
}
