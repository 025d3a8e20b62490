package swarm

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

func TestDecideInit(t *testing.T) {
	tests := []struct {
		name  string
		sw    swarm.Info
		want  InitAction
		state string // of the InitRefusedError
	}{
		{"inactive", swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}, InitCreate, ""},
		{"empty state (old engine)", swarm.Info{}, InitCreate, ""},
		{"manager", swarm.Info{LocalNodeState: swarm.LocalNodeStateActive, ControlAvailable: true}, InitExisting, ""},
		{"worker", swarm.Info{LocalNodeState: swarm.LocalNodeStateActive}, "", "worker"},
		{"pending", swarm.Info{LocalNodeState: swarm.LocalNodeStatePending}, "", "pending"},
		{"locked", swarm.Info{LocalNodeState: swarm.LocalNodeStateLocked}, "", "locked"},
		{"error", swarm.Info{LocalNodeState: swarm.LocalNodeStateError, Error: "boom"}, "", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecideInit("unix:///x.sock", tt.sw)
			if tt.state != "" {
				var re *InitRefusedError
				if !errors.As(err, &re) || re.State != tt.state || re.Hint() == "" {
					t.Fatalf("err = %v, want InitRefusedError %s with a hint", err, tt.state)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestInitOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    InitOptions
		err  string
	}{
		{"zero", InitOptions{}, ""},
		{"full", InitOptions{AdvertiseAddr: "eth0:2377", ListenAddr: "0.0.0.0:2377", DataPathPort: 4790,
			DefaultAddrPools: []string{"10.100.0.0/16", "10.200.0.0/16"},
			Networks:         []NetworkSpec{{Name: "micro", Pools: []IPAMPool{{Subnet: "10.10.0.0/24"}}}, {Name: "b"}}}, ""},
		{"data path port low", InitOptions{DataPathPort: 80}, "--data-path-port 80: must be from 1024 to 49151"},
		{"bad pool", InitOptions{DefaultAddrPools: []string{"10.1.0.0"}}, "--default-addr-pool: invalid CIDR"},
		{"overlapping pools", InitOptions{DefaultAddrPools: []string{"10.0.0.0/8", "10.1.0.0/16"}}, "overlap"},
		{"bad advertise port", InitOptions{AdvertiseAddr: "eth0:99999"}, "--advertise-addr eth0:99999: port"},
		{"two networks one name", InitOptions{Networks: []NetworkSpec{{Name: "a"}, {Name: "a"}}}, "asked for twice"},
		{"networks overlap each other", InitOptions{Networks: []NetworkSpec{
			{Name: "a", Pools: []IPAMPool{{Subnet: "10.1.0.0/16"}}}, {Name: "b", Pools: []IPAMPool{{Subnet: "10.1.5.0/24"}}}}},
			"networks a (10.1.0.0/16) and b (10.1.5.0/24) overlap"},
		{"bad network name", InitOptions{Networks: []NetworkSpec{{Name: "bad name"}}}, "invalid network name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func fixedIfaces() ([]HostInterface, error) {
	return []HostInterface{
		{Name: "lo", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
		{Name: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("fe80::1")}},
	}, nil
}

func microSpec(subnet string) NetworkSpec {
	s := NetworkSpec{Name: "micro", Attachable: true}
	if subnet != "" {
		s.Pools = []IPAMPool{{Subnet: subnet}}
	}
	return s
}

func TestInitFresh(t *testing.T) {
	f := newFake()
	f.nets = []network.Inspect{{Name: "bridge", ID: "bridgeid", Driver: "bridge", Scope: "local",
		IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: "172.17.0.0/16"}}}}}
	res, err := Init(context.Background(), f, InitOptions{AdvertiseAddr: "eth0", Autolock: true,
		Networks: []NetworkSpec{microSpec("10.10.0.0/24")}, Interfaces: fixedIfaces})
	if err != nil {
		t.Fatal(err)
	}
	if f.initReq.AdvertiseAddr != "192.0.2.2" || f.initReq.ListenAddr != "0.0.0.0:2377" || !f.initReq.AutoLockManagers {
		t.Errorf("init request %+v", f.initReq)
	}
	if !res.Initialised || res.SwarmID != "swarm1bbbbbbbbbbbbb" || res.ManagerAddr != "192.0.2.2:2377" ||
		len(res.Networks) != 1 || !res.Networks[0].Created || res.Networks[0].SubnetList() != "10.10.0.0/24" ||
		res.UnlockKey != "SWMKEY-1-fake" || len(res.Warnings) != 0 {
		t.Errorf("result %+v", res)
	}
	if want := "microctl swarm join --token SWMTKN-1-abc-worker 192.0.2.2:2377"; res.JoinCommand.Worker != want {
		t.Errorf("worker command %q, want %q", res.JoinCommand.Worker, want)
	}
	if want := []string{"init", "create micro"}; !reflect.DeepEqual(f.changes, want) {
		t.Errorf("changes %v, want %v", f.changes, want)
	}

	// Twice: the second run reports the swarm and changes nothing.
	f.changes = nil
	res, err = Init(context.Background(), f, InitOptions{Networks: []NetworkSpec{microSpec("10.10.0.0/24")}})
	if err != nil || res.Initialised || res.Networks[0].Created || len(f.changes) != 0 {
		t.Fatalf("second init: %+v, %v, changes %v", res, err, f.changes)
	}
}

// Bad input of every kind leaves the engine untouched.
func TestInitRefusesBeforeChangingAnything(t *testing.T) {
	tests := []struct {
		name    string
		engine  func() *fakeEngine
		opts    InitOptions
		errType any
		msg     string
	}{
		{"unknown interface", newFake, InitOptions{AdvertiseAddr: "eth9"}, &AddrError{},
			"--advertise-addr eth9: no such interface or IP address (interfaces here: eth0, lo)"},
		{"worker", func() *fakeEngine {
			f := newFake()
			f.info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateActive}
			return f
		}, InitOptions{Networks: []NetworkSpec{microSpec("")}}, &InitRefusedError{}, "is a worker in a swarm"},
		{"subnet collides with the ingress init would make", newFake, InitOptions{Networks: []NetworkSpec{microSpec("10.0.0.0/16")}},
			&SubnetOverlapError{}, "overlaps 10.0.0.0/24 of network ingress"},
		{"subnet collides with ingress from a custom pool", newFake,
			InitOptions{DefaultAddrPools: []string{"10.50.0.0/16"}, Networks: []NetworkSpec{microSpec("10.50.0.0/24")}},
			&SubnetOverlapError{}, "overlaps 10.50.0.0/24 of network ingress"},
		{"local network of that name", func() *fakeEngine {
			f := newFake()
			f.nets = []network.Inspect{{Name: "micro", ID: "m", Driver: "bridge", Scope: "local", Attachable: true}}
			return f
		}, InitOptions{Networks: []NetworkSpec{microSpec("")}}, &NetworkConflictError{}, "driver is bridge, want overlay; scope is local, want swarm"},
		{"manager: second network conflicts, first not created either", func() *fakeEngine {
			f := newFake().asManager()
			f.nets = append(f.nets, overlay("b", "10.20.0.0/24", false, false))
			return f
		}, InitOptions{Networks: []NetworkSpec{microSpec("10.10.0.0/24"), {Name: "b", Attachable: true}}},
			&NetworkConflictError{}, "network b already exists with different settings: attachable is false, want true"},
		{"engine down", func() *fakeEngine {
			f := newFake()
			f.infoErr = errors.New("Cannot connect to the Docker daemon at unix:///fake.sock. Is the docker daemon running?")
			return f
		}, InitOptions{}, &EngineUnreachableError{}, "cannot reach the Docker Engine at unix:///fake.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.engine()
			tt.opts.Interfaces = fixedIfaces
			_, err := Init(context.Background(), f, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want containing %q", err, tt.msg)
			}
			if target := reflect.New(reflect.TypeOf(tt.errType)); !errors.As(err, target.Interface()) {
				t.Errorf("err is %T, want %T", err, tt.errType)
			}
			if len(f.changes) != 0 {
				t.Errorf("changed the engine: %v", f.changes)
			}
		})
	}
}

// When a network fails after the swarm was made, the error says what
// exists now.
func TestInitIncomplete(t *testing.T) {
	f := newFake()
	f.fail["create b"] = errors.New("Error response from daemon: failed to allocate network IDs")
	_, err := Init(context.Background(), f, InitOptions{AdvertiseAddr: "10.1.0.1",
		Networks: []NetworkSpec{microSpec(""), {Name: "b", Attachable: true}}})
	var ie *InitIncompleteError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v (%T), want InitIncompleteError", err, err)
	}
	want := "swarm initialised (swarm swarm1bbbbbb, manager 10.1.0.1:2377) and network micro created, but network b was not created: create network b: Error response from daemon: failed to allocate network IDs"
	if err.Error() != want {
		t.Errorf("err =\n%s\nwant\n%s", err, want)
	}
	if !strings.Contains(ie.Hint(), "run microctl swarm init again") {
		t.Errorf("hint %q", ie.Hint())
	}
}

func TestInitExistingWarnsAboutIgnoredOptions(t *testing.T) {
	f := newFake().asManager()
	res, err := Init(context.Background(), f, InitOptions{AdvertiseAddr: "eth0", ListenAddr: "0.0.0.0:2400", DataPathPort: 4790,
		DefaultAddrPools: []string{"10.50.0.0/16"}, Autolock: true, Interfaces: fixedIfaces})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--advertise-addr eth0 ignored: this node already advertises 10.1.0.1",
		"--listen-addr 0.0.0.0:2400 ignored: the swarm already exists",
		"--data-path-port 4790 ignored: the swarm uses 4789",
		"--default-addr-pool 10.50.0.0/16 ignored: the swarm uses 10.0.0.0/8",
		"--autolock ignored: the existing swarm is not autolocked (turn it on with docker swarm update --autolock=true)",
	}
	if !reflect.DeepEqual(res.Warnings, want) {
		t.Errorf("warnings\n%q\nwant\n%q", res.Warnings, want)
	}
	if res.UnlockKey != "" || len(f.changes) != 0 {
		t.Errorf("unlock key %q, changes %v", res.UnlockKey, f.changes)
	}
}

func TestInitEngineRefuses(t *testing.T) {
	f := newFake()
	f.fail["init"] = errors.New("Error response from daemon: could not choose an IP address to advertise since this system has multiple addresses on interface eth0 (192.0.2.2 and fd00::2)")
	_, err := Init(context.Background(), f, InitOptions{Networks: []NetworkSpec{microSpec("")}})
	var se *SwarmInitError
	if !errors.As(err, &se) || !strings.Contains(se.Hint(), "--advertise-addr") {
		t.Fatalf("err = %v, want SwarmInitError with an --advertise-addr hint", err)
	}
	if len(f.changes) != 0 {
		t.Errorf("changes %v", f.changes)
	}
}

func TestPredictedIngress(t *testing.T) {
	for pools, want := range map[string]string{"": "10.0.0.0/24", "10.50.0.0/16": "10.50.0.0/24", "10.60.0.0/26": "10.60.0.0/26"} {
		var p []string
		if pools != "" {
			p = []string{pools}
		}
		if got := predictedIngress(p).IPAM.Config[0].Subnet; got != want {
			t.Errorf("pools %q: ingress %s, want %s", pools, got, want)
		}
	}
}
