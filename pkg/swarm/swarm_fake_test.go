package swarm

import (
	"context"
	"fmt"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
)

// fakeEngine is a Docker Engine in memory: it embeds client.APIClient (so
// any method a test did not expect panics on the nil interface) and
// overrides what swarm and network management call. It records every call
// that changes state, so a test can assert that nothing was changed.
type fakeEngine struct {
	client.APIClient

	host     string
	info     system.Info
	infoErr  error
	nets     []network.Inspect
	services []swarm.Service
	nodes    []swarm.Node
	cluster  swarm.Swarm
	configs  int
	secrets  int
	nextNet  int

	// Errors to return from the changing calls, by call name.
	fail map[string]error
	// Changes lists the state-changing calls made, e.g. "create micro".
	changes []string
	initReq *swarm.InitRequest
	joinReq *swarm.JoinRequest
}

func newFake() *fakeEngine {
	// The engine's name is this machine's: interface names resolve here.
	me, _ := os.Hostname()
	return &fakeEngine{host: "unix:///fake.sock", fail: map[string]error{},
		info: system.Info{Name: me, Swarm: swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}}}
}

// asManager makes the fake a manager of a one-node swarm with an ingress.
func (f *fakeEngine) asManager() *fakeEngine {
	f.info.Swarm = swarm.Info{NodeID: "node1aaaaaaaaaaaa", NodeAddr: "10.1.0.1", LocalNodeState: swarm.LocalNodeStateActive,
		ControlAvailable: true, RemoteManagers: []swarm.Peer{{NodeID: "node1aaaaaaaaaaaa", Addr: "10.1.0.1:2377"}}}
	f.cluster = swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: "swarm1bbbbbbbbbbbbb", DataPathPort: 4789, DefaultAddrPool: []string{"10.0.0.0/8"}},
		JoinTokens: swarm.JoinTokens{Worker: "SWMTKN-1-abc-worker", Manager: "SWMTKN-1-abc-manager"}}
	f.nodes = []swarm.Node{managerNode("node1aaaaaaaaaaaa", "m1", true, swarm.ReachabilityReachable, swarm.NodeStateReady)}
	hasIngress := false
	for _, n := range f.nets {
		hasIngress = hasIngress || n.Ingress
	}
	if !hasIngress {
		f.nets = append(f.nets, network.Inspect{Name: "ingress", ID: "ingressid", Driver: "overlay", Scope: "swarm", Ingress: true,
			IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.0.0.0/24", Gateway: "10.0.0.1"}}}})
	}
	return f
}

func managerNode(id, host string, leader bool, r swarm.Reachability, st swarm.NodeState) swarm.Node {
	return swarm.Node{ID: id,
		Spec:          swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: swarm.NodeAvailabilityActive},
		Description:   swarm.NodeDescription{Hostname: host, Engine: swarm.EngineDescription{EngineVersion: "20.10.24"}},
		Status:        swarm.NodeStatus{State: st, Addr: "10.1.0.1"},
		ManagerStatus: &swarm.ManagerStatus{Leader: leader, Reachability: r, Addr: "10.1.0.1:2377"}}
}

func workerNode(id, host string, st swarm.NodeState) swarm.Node {
	return swarm.Node{ID: id,
		Spec:        swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive},
		Description: swarm.NodeDescription{Hostname: host, Engine: swarm.EngineDescription{EngineVersion: "20.10.24"}},
		Status:      swarm.NodeStatus{State: st, Addr: "10.1.0.2"}}
}

func (f *fakeEngine) DaemonHost() string { return f.host }

func (f *fakeEngine) Info(ctx context.Context) (system.Info, error) {
	return f.info, f.infoErr
}

func (f *fakeEngine) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	var out []network.Summary
	for _, n := range f.nets {
		// The engine's name filter matches substrings; so does the fake.
		if names := o.Filters.Get("name"); len(names) > 0 && !strings.Contains(n.Name, names[0]) {
			continue
		}
		if d := o.Filters.Get("driver"); len(d) > 0 && n.Driver != d[0] {
			continue
		}
		if s := o.Filters.Get("scope"); len(s) > 0 && n.Scope != s[0] {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func (f *fakeEngine) NetworkInspect(ctx context.Context, id string, o network.InspectOptions) (network.Inspect, error) {
	for _, n := range f.nets {
		if n.ID == id || n.Name == id {
			return n, nil
		}
	}
	return network.Inspect{}, cerrdefs.ErrNotFound.WithMessage("network " + id + " not found")
}

func (f *fakeEngine) NetworkCreate(ctx context.Context, name string, o network.CreateOptions) (network.CreateResponse, error) {
	if err := f.fail["create "+name]; err != nil {
		return network.CreateResponse{}, err
	}
	for _, n := range f.nets {
		if n.Name == name {
			return network.CreateResponse{}, cerrdefs.ErrConflict.WithMessage("network with name " + name + " already exists")
		}
	}
	f.changes = append(f.changes, "create "+name)
	f.nextNet++
	n := network.Inspect{Name: name, ID: fmt.Sprintf("net%02dcccccccccccc", f.nextNet), Driver: o.Driver, Scope: o.Scope,
		Attachable: o.Attachable, Internal: o.Internal, Labels: o.Labels, Options: map[string]string{}}
	for k, v := range o.Options {
		n.Options[k] = v
	}
	if o.IPAM != nil {
		n.IPAM = *o.IPAM
	} else {
		n.IPAM.Config = []network.IPAMConfig{{Subnet: fmt.Sprintf("10.0.%d.0/24", f.nextNet), Gateway: fmt.Sprintf("10.0.%d.1", f.nextNet)}}
	}
	f.nets = append(f.nets, n)
	return network.CreateResponse{ID: n.ID}, nil
}

func (f *fakeEngine) NetworkRemove(ctx context.Context, id string) error {
	for i, n := range f.nets {
		if n.ID == id {
			f.changes = append(f.changes, "rm "+n.Name)
			f.nets = append(f.nets[:i], f.nets[i+1:]...)
			return nil
		}
	}
	return cerrdefs.ErrNotFound
}

func (f *fakeEngine) ServiceList(ctx context.Context, o swarm.ServiceListOptions) ([]swarm.Service, error) {
	if !f.info.Swarm.ControlAvailable {
		return nil, cerrdefs.ErrUnavailable.WithMessage("This node is not a swarm manager.")
	}
	return f.services, nil
}

func (f *fakeEngine) NodeList(ctx context.Context, o swarm.NodeListOptions) ([]swarm.Node, error) {
	return f.nodes, nil
}

func (f *fakeEngine) ConfigList(ctx context.Context, o swarm.ConfigListOptions) ([]swarm.Config, error) {
	return make([]swarm.Config, f.configs), nil
}

func (f *fakeEngine) SecretList(ctx context.Context, o swarm.SecretListOptions) ([]swarm.Secret, error) {
	return make([]swarm.Secret, f.secrets), nil
}

func (f *fakeEngine) SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error) {
	if err := f.fail["init"]; err != nil {
		return "", err
	}
	f.changes = append(f.changes, "init")
	f.initReq = &req
	f.asManager()
	if req.AdvertiseAddr != "" {
		h, _, _ := SplitAddrPort(req.AdvertiseAddr)
		f.info.Swarm.NodeAddr = h
		f.info.Swarm.RemoteManagers[0].Addr = joinHostPort(h, DefaultSwarmPort)
	}
	f.cluster.Spec.EncryptionConfig.AutoLockManagers = req.AutoLockManagers
	return f.info.Swarm.NodeID, nil
}

func (f *fakeEngine) SwarmInspect(ctx context.Context) (swarm.Swarm, error) {
	if !f.info.Swarm.ControlAvailable {
		return swarm.Swarm{}, cerrdefs.ErrUnavailable.WithMessage("This node is not a swarm manager.")
	}
	return f.cluster, nil
}

func (f *fakeEngine) SwarmGetUnlockKey(ctx context.Context) (swarm.UnlockKeyResponse, error) {
	return swarm.UnlockKeyResponse{UnlockKey: "SWMKEY-1-fake"}, nil
}

func (f *fakeEngine) SwarmJoin(ctx context.Context, req swarm.JoinRequest) error {
	if err := f.fail["join"]; err != nil {
		return err
	}
	f.changes = append(f.changes, "join")
	f.joinReq = &req
	f.info.Swarm = swarm.Info{NodeID: "node2dddddddddddd", NodeAddr: "10.1.0.2", LocalNodeState: swarm.LocalNodeStateActive,
		RemoteManagers: []swarm.Peer{{NodeID: "node1aaaaaaaaaaaa", Addr: req.RemoteAddrs[0]}}}
	return nil
}

func (f *fakeEngine) SwarmLeave(ctx context.Context, force bool) error {
	f.changes = append(f.changes, fmt.Sprintf("leave force=%v", force))
	f.info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	return nil
}

func (f *fakeEngine) SwarmUpdate(ctx context.Context, v swarm.Version, spec swarm.Spec, flags swarm.UpdateFlags) error {
	f.changes = append(f.changes, fmt.Sprintf("update worker=%v manager=%v", flags.RotateWorkerToken, flags.RotateManagerToken))
	if flags.RotateWorkerToken {
		f.cluster.JoinTokens.Worker += "2"
	}
	if flags.RotateManagerToken {
		f.cluster.JoinTokens.Manager += "2"
	}
	return nil
}

// overlay is an existing overlay network for tests.
func overlay(name, subnet string, attachable, encrypted bool) network.Inspect {
	n := network.Inspect{Name: name, ID: name + "-id", Driver: "overlay", Scope: "swarm", Attachable: attachable,
		Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4097"}}
	if subnet != "" {
		n.IPAM.Config = []network.IPAMConfig{{Subnet: subnet}}
	}
	if encrypted {
		n.Options["encrypted"] = ""
	}
	return n
}

// svcOn is a service attached to network target (an ID or a name).
func svcOn(name, target string) swarm.Service {
	s := swarm.Service{ID: name + "-svc"}
	s.Spec.Name = name
	s.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: target}}
	return s
}
