package swarm

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestValidateJoinToken(t *testing.T) {
	good := "SWMTKN-1-3lkuignvn3dj2ntrivq1lunpv81w5z2e8i71wjd1300cg267rp-c5yuj30v6iqppxv4gmjmgvgb3"
	if err := ValidateJoinToken(good); err != nil {
		t.Errorf("good token refused: %v", err)
	}
	for _, bad := range []string{"", "SWMTKN-1-", "SWMTKN-1-abc", "SWMTKN-2-abc-def", good + "\n", good[:40] + " " + good[41:], "swmtkn-1-abc-def"} {
		err := ValidateJoinToken(bad)
		if err == nil || strings.Contains(err.Error(), good) {
			t.Errorf("ValidateJoinToken(%q) = %v (must refuse, and not echo a whole token)", bad, err)
		}
	}
}

func TestManagerAddr(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "10.0.0.1:2377", "10.0.0.1:2400": "10.0.0.1:2400", "manager1": "manager1:2377",
		"fd00::1": "[fd00::1]:2377", "[fd00::1]:2400": "[fd00::1]:2400",
	} {
		if got, err := ManagerAddr(in); err != nil || got != want {
			t.Errorf("ManagerAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0.0.0.0", "10.0.0.1:0", "10.0.0.1:x", ":2377", "a:b:c"} {
		if _, err := ManagerAddr(bad); err == nil {
			t.Errorf("ManagerAddr(%q) accepted", bad)
		}
	}
}

func TestDecideJoin(t *testing.T) {
	member := swarm.Info{LocalNodeState: swarm.LocalNodeStateActive,
		RemoteManagers: []swarm.Peer{{NodeID: "m1", Addr: "10.0.0.1:2377"}, {NodeID: "m2", Addr: "10.0.0.2:2377"}}}
	tests := []struct {
		name   string
		sw     swarm.Info
		remote string
		want   JoinAction
		err    string
	}{
		{"inactive", swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}, "10.0.0.1:2377", JoinNew, ""},
		{"already in that swarm", member, "10.0.0.2:2377", JoinMember, ""},
		{"in another swarm", member, "10.9.9.9:2377", "", "is already a worker in a swarm (managers: 10.0.0.1:2377, 10.0.0.2:2377)"},
		{"pending", swarm.Info{LocalNodeState: swarm.LocalNodeStatePending}, "10.0.0.1:2377", "", "joining a swarm (pending)"},
		{"locked", swarm.Info{LocalNodeState: swarm.LocalNodeStateLocked}, "10.0.0.1:2377", "", "locked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecideJoin("unix:///x.sock", tt.sw, tt.remote)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	o := JoinOptions{Token: "SWMTKN-1-abc-def", RemoteAddr: "10.1.0.1", AdvertiseAddr: "eth0", Availability: "drain", Interfaces: fixedIfaces}
	res, err := Join(ctx, f, o)
	if err != nil {
		t.Fatal(err)
	}
	want := JoinResult{NodeID: "node2dddddddddddd", Role: "worker", ManagerAddr: "10.1.0.1:2377", Joined: true, Managers: []string{"10.1.0.1:2377"}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result %+v, want %+v", res, want)
	}
	if r := f.joinReq; r.AdvertiseAddr != "192.0.2.2" || r.ListenAddr != "0.0.0.0:2377" || r.Availability != swarm.NodeAvailabilityDrain ||
		!reflect.DeepEqual(r.RemoteAddrs, []string{"10.1.0.1:2377"}) {
		t.Errorf("join request %+v", r)
	}
	// Again: already a member, nothing sent.
	f.changes = nil
	if res, err := Join(ctx, f, o); err != nil || res.Joined || len(f.changes) != 0 {
		t.Errorf("second join: %+v, %v, changes %v", res, err, f.changes)
	}

	// Bad input never reaches the engine.
	for _, bad := range []JoinOptions{
		{Token: "nope", RemoteAddr: "10.1.0.1"},
		{Token: "SWMTKN-1-abc-def", RemoteAddr: "0.0.0.0"},
		{Token: "SWMTKN-1-abc-def", RemoteAddr: "10.1.0.1", Availability: "sleepy"},
		{Token: "SWMTKN-1-abc-def", RemoteAddr: "10.1.0.1", AdvertiseAddr: "wlan7", Interfaces: fixedIfaces},
	} {
		f := newFake()
		if _, err := Join(ctx, f, bad); err == nil || len(f.changes) != 0 {
			t.Errorf("%+v: err %v, changes %v", bad, err, f.changes)
		}
	}

	// The engine's refusal comes back with a hint.
	f = newFake()
	f.fail["join"] = errors.New("Error response from daemon: Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the \"docker info\" command to see the current swarm status of your node.")
	_, err = Join(ctx, f, JoinOptions{Token: "SWMTKN-1-abc-def", RemoteAddr: "10.1.0.1"})
	var je *SwarmJoinError
	if !errors.As(err, &je) || !strings.Contains(je.Hint(), "reachable") {
		t.Errorf("err = %v", err)
	}
}
