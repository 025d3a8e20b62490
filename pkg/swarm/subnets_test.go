package swarm

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// subnetsFake answers what Subnets asks.
type subnetsFake struct {
	SubnetsAPI
	state   swarm.LocalNodeState
	manager bool
	nets    []network.Summary
	nodes   []swarm.Node
}

func (f subnetsFake) Info(context.Context) (system.Info, error) {
	var i system.Info
	i.Swarm.ControlAvailable = f.manager
	i.Swarm.LocalNodeState = f.state
	return i, nil
}
func (f subnetsFake) DaemonHost() string { return "unix:///fake.sock" }
func (f subnetsFake) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	return f.nets, nil
}
func (f subnetsFake) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	return f.nodes, nil
}

func TestSubnets(t *testing.T) {
	net := func(name, driver, subnet string, ingress bool) network.Summary {
		return network.Summary{Name: name, Driver: driver, Ingress: ingress, IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}}
	}
	d := subnetsFake{manager: true, state: swarm.LocalNodeStateActive,
		nets: []network.Summary{net("ingress", "overlay", "10.0.0.0/24", true), net("micro", "overlay", "10.0.1.7/24", false),
			net("docker_gwbridge", "bridge", "172.18.0.0/16", false), net("host", "host", "", false)},
		nodes: []swarm.Node{{Status: swarm.NodeStatus{Addr: "192.168.1.10"}}, {Status: swarm.NodeStatus{Addr: "?"}}}}
	got, err := Subnets(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	want := &AddressSpace{
		Overlays:  []Subnet{{Name: "micro", Prefix: netip.MustParsePrefix("10.0.1.0/24")}},
		Ingress:   []Subnet{{Name: "ingress", Prefix: netip.MustParsePrefix("10.0.0.0/24")}},
		Bridges:   []Subnet{{Name: "docker_gwbridge", Prefix: netip.MustParsePrefix("172.18.0.0/16")}},
		NodeAddrs: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Subnets = %+v, want %+v", got, want)
	}

	worker := d
	worker.manager = false
	var nm *NotManagerError
	if _, err := Subnets(context.Background(), worker); !errors.As(err, &nm) || nm.State != "worker" {
		t.Errorf("worker: %v, want NotManagerError worker", err)
	}
	onlyIngress := d
	onlyIngress.nets = d.nets[:1]
	if _, err := Subnets(context.Background(), onlyIngress); !errors.Is(err, ErrNoOverlay) {
		t.Errorf("only ingress: %v, want ErrNoOverlay", err)
	}
}
