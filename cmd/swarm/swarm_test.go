package swarm

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	dswarm "github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/golden"
	sw "github.com/microctl/microctl/pkg/swarm"
)

// parse runs a command's flag parsing and validation with a runF that
// captures the options, so nothing touches an engine.
func isUsage(err error) bool {
	var ue *cmdutil.UsageError
	return errors.As(err, &ue)
}

func TestInitFlags(t *testing.T) {
	micro := sw.NetworkSpec{Name: "micro", Attachable: true}
	tests := []struct {
		name  string
		args  []string
		specs []sw.NetworkSpec
		usage string
	}{
		{"default: the micro network", nil, []sw.NetworkSpec{micro}, ""},
		{"networks, encrypted", []string{"--network", "micro:10.10.0.0/24", "--network", "backend", "--encrypted"}, []sw.NetworkSpec{
			{Name: "micro", Attachable: true, Encrypted: true, Pools: []sw.IPAMPool{{Subnet: "10.10.0.0/24"}}},
			{Name: "backend", Attachable: true, Encrypted: true}}, ""},
		{"no network", []string{"--no-network"}, nil, ""},
		{"no network and network", []string{"--no-network", "--network", "x"}, nil, "exclude each other"},
		{"quiet and json", []string{"-q", "-o", "json"}, nil, "exclude each other"},
		{"invalid CIDR", []string{"--network", "micro:10.10.0.1/24"}, nil, "did you mean 10.10.0.0/24"},
		{"same network twice", []string{"--network", "a", "--network", "a"}, nil, "asked for twice"},
		{"bad data path port", []string{"--data-path-port", "80"}, nil, "1024 to 49151"},
		{"bad pool", []string{"--default-addr-pool", "10.0.0.0"}, nil, "no prefix length"},
		{"bad advertise port", []string{"--advertise-addr", "eth0:x"}, nil, "port"},
		{"argument", []string{"extra"}, nil, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := cmdtest.Parse(t, NewCmdInit, tt.args...)
			if tt.usage != "" {
				if err == nil || !strings.Contains(err.Error(), tt.usage) {
					t.Fatalf("err = %v, want %q", err, tt.usage)
				}
				if tt.name != "argument" && !isUsage(err) {
					t.Errorf("err %T is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Specs, tt.specs) {
				t.Errorf("specs %+v, want %+v", o.Specs, tt.specs)
			}
		})
	}
}

func TestJoinFlags(t *testing.T) {
	o, err := cmdtest.Parse(t, NewCmdJoin, "--token", "SWMTKN-1-abc-def", "--availability", "drain", "10.0.0.1")
	if err != nil || o.ManagerAddr != "10.0.0.1" || o.Availability != "drain" {
		t.Fatalf("%+v %v", o, err)
	}
	for _, args := range [][]string{
		{"10.0.0.1"},
		{"--token", "x", "10.0.0.1"},
		{"--token", "SWMTKN-1-abc-def", "--availability", "gone", "10.0.0.1"},
		{"--token", "SWMTKN-1-abc-def", "0.0.0.0"},
	} {
		if _, err := cmdtest.Parse(t, NewCmdJoin, args...); !isUsage(err) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}

func TestTokenFlags(t *testing.T) {
	o, err := cmdtest.Parse(t, NewCmdToken, "manager", "--rotate", "-q")
	if err != nil || o.Role != "manager" || !o.Rotate || !o.Quiet {
		t.Fatalf("%+v %v", o, err)
	}
	if _, err := cmdtest.Parse(t, NewCmdToken, "admin"); !isUsage(err) {
		t.Errorf("admin: %v", err)
	}
}

// statusEngine is an engine with a fixed swarm, for rendering tests.
type statusEngine struct {
	client.APIClient
	nodes []dswarm.Node
}

func (statusEngine) DaemonHost() string { return "unix:///fake.sock" }
func (statusEngine) Info(context.Context) (system.Info, error) {
	return system.Info{Swarm: dswarm.Info{NodeID: "n1aaaaaaaaaaaaaaaa", NodeAddr: "10.1.0.1", LocalNodeState: dswarm.LocalNodeStateActive,
		ControlAvailable: true, RemoteManagers: []dswarm.Peer{{NodeID: "n1aaaaaaaaaaaaaaaa", Addr: "10.1.0.1:2377"}}}}, nil
}
func (statusEngine) SwarmInspect(context.Context) (dswarm.Swarm, error) {
	s := dswarm.Swarm{}
	s.ID = "swarmidxxxxxxxxxxxxxxxxx"
	s.CreatedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return s, nil
}
func (e statusEngine) NodeList(context.Context, dswarm.NodeListOptions) ([]dswarm.Node, error) {
	return e.nodes, nil
}
func (statusEngine) NetworkList(context.Context, network.ListOptions) ([]network.Summary, error) {
	return []network.Summary{
		{Name: "ingress", ID: "ingressidxxxxxxx", Driver: "overlay", Scope: "swarm", Ingress: true,
			IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.0.0/24", Gateway: "10.0.0.1"}}}},
		{Name: "micro", ID: "microidxxxxxxxxx", Driver: "overlay", Scope: "swarm", Attachable: true, Options: map[string]string{"encrypted": ""},
			Created: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
			IPAM:    network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.10.0.0/24", Gateway: "10.10.0.1"}}}},
	}, nil
}
func (e statusEngine) NetworkInspect(ctx context.Context, id string, o network.InspectOptions) (network.Inspect, error) {
	l, _ := e.NetworkList(ctx, network.ListOptions{})
	for _, n := range l {
		if n.ID == id {
			return n, nil
		}
	}
	return network.Inspect{}, errors.New("not found")
}
func (statusEngine) ServiceList(context.Context, dswarm.ServiceListOptions) ([]dswarm.Service, error) {
	s := dswarm.Service{}
	s.Spec.Name = "greeter"
	s.Spec.TaskTemplate.Networks = []dswarm.NetworkAttachmentConfig{{Target: "microidxxxxxxxxx"}}
	return []dswarm.Service{s}, nil
}

func node(id, host string, role dswarm.NodeRole, state dswarm.NodeState, reach dswarm.Reachability, leader bool) dswarm.Node {
	n := dswarm.Node{ID: id}
	n.Description.Hostname = host
	n.Description.Engine.EngineVersion = "20.10.24"
	n.Spec.Role, n.Spec.Availability = role, dswarm.NodeAvailabilityActive
	n.Status.State, n.Status.Addr = state, "10.1.0."+host[len(host)-1:]
	if role == dswarm.NodeRoleManager {
		n.ManagerStatus = &dswarm.ManagerStatus{Leader: leader, Reachability: reach}
	}
	return n
}

func runStatusWith(t *testing.T, nodes []dswarm.Node, format cmdutil.Format) (string, string, error) {
	ios, _, out, errOut := cmdutil.Test()
	opts := &StatusOptions{IO: ios, Output: format,
		Docker: func() (client.APIClient, error) { return statusEngine{nodes: nodes}, nil }}
	err := runStatus(context.Background(), opts)
	return out.String(), errOut.String(), err
}

func TestStatusRendering(t *testing.T) {
	healthy := []dswarm.Node{
		node("n1aaaaaaaaaaaaaaaa", "node1", dswarm.NodeRoleManager, dswarm.NodeStateReady, dswarm.ReachabilityReachable, true),
		node("n2bbbbbbbbbbbbbbbb", "node2", dswarm.NodeRoleWorker, dswarm.NodeStateReady, "", false),
		node("n3cccccccccccccccc", "node3", dswarm.NodeRoleWorker, dswarm.NodeStateReady, "", false),
	}
	out, _, err := runStatusWith(t, healthy, cmdutil.FormatTable)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "status-healthy.txt", []byte(out))
	out, _, err = runStatusWith(t, healthy, cmdutil.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "status-healthy.json", []byte(out))

	down := append([]dswarm.Node(nil), healthy...)
	down[2] = node("n3cccccccccccccccc", "node3", dswarm.NodeRoleWorker, dswarm.NodeStateDown, "", false)
	down[2].Status.Message = "heartbeat failure"
	out, stderr, err := runStatusWith(t, down, cmdutil.FormatTable)
	var ue *cmdutil.UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want UnhealthyError (exit 3)", err)
	}
	if want := "swarm unhealthy: 1 problem: node node3 (n3cccccccccc) is down: heartbeat failure"; ue.Msg != want {
		t.Errorf("summary %q, want %q", ue.Msg, want)
	}
	golden.Assert(t, "status-down.txt", []byte(out))
	if stderr != "" {
		t.Errorf("stderr %q: the summary is printed once, by root", stderr)
	}
}

func TestInitRendering(t *testing.T) {
	res := sw.InitResult{SwarmID: "swarmidxxxxxxxxxxxxxxxxx", NodeID: "n1aaaaaaaaaaaaaaaa", ManagerAddr: "10.1.0.1:2377", Initialised: true,
		Networks: []sw.NetworkResult{{Created: true, OverlayNetwork: sw.OverlayNetwork{Name: "micro", Driver: "overlay", Attachable: true,
			Subnets: []sw.IPAMPool{{Subnet: "10.10.0.0/24"}}}}},
		JoinTokens:  sw.JoinTokens{Worker: "SWMTKN-1-w", Manager: "SWMTKN-1-m"},
		JoinCommand: sw.JoinTokens{Worker: sw.JoinCommand("SWMTKN-1-w", "10.1.0.1:2377"), Manager: sw.JoinCommand("SWMTKN-1-m", "10.1.0.1:2377")},
		UnlockKey:   "SWMKEY-1-k"}
	var b bytes.Buffer
	renderInit(&b, res)
	res.Initialised = false
	res.Networks[0].Created = false
	res.UnlockKey = ""
	b.WriteString("---\n")
	renderInit(&b, res)
	golden.Assert(t, "init.txt", b.Bytes())
}
