package swarm

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

func TestDecideLeave(t *testing.T) {
	last := LeavePlan{State: "manager", NodeID: "n1", Managers: 1, Reachable: 1, OtherNodes: 2,
		Services: []string{"api", "web"}, Networks: []string{"micro"}, Configs: 1, Secrets: 3}
	three := LeavePlan{State: "manager", NodeID: "n1", Managers: 3, Reachable: 3}
	two := LeavePlan{State: "manager", NodeID: "n1", Managers: 2, Reachable: 2}
	tests := []struct {
		name         string
		plan         LeavePlan
		force        bool
		leave, eng   bool
		errMsg, hint string
	}{
		{"not in a swarm", LeavePlan{State: "inactive"}, false, false, false, "", ""},
		{"worker", LeavePlan{State: "worker"}, false, true, false, "", ""},
		{"worker --force", LeavePlan{State: "worker"}, true, true, true, "", ""},
		{"last manager", last, false, false, false,
			"this node is the last manager of the swarm: leaving destroys the swarm and everything in it: 2 services (api, web), 1 network (micro), 1 config, 3 secrets; 2 other nodes lose their swarm",
			"microctl swarm leave --force destroys it anyway"},
		{"last manager --force", last, true, true, true, "", ""},
		{"one of three managers", three, false, false, false,
			"this node is one of 3 managers: leaving without demoting it first leaves a manager entry behind",
			"demote it first with docker node demote n1 on another manager, or use --force"},
		{"one of two managers: quorum", two, false, false, false,
			"this node is a manager: leaving leaves 1 of 1 managers reachable and the swarm loses its Raft quorum (it stops accepting changes)", ""},
		{"locked", LeavePlan{State: "locked", Host: "h"}, false, false, false, "the swarm on the Docker Engine at h is locked", ""},
		{"pending --force", LeavePlan{State: "pending"}, true, true, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leave, eng, err := DecideLeave(tt.plan, tt.force)
			if tt.errMsg != "" {
				if err == nil || err.Error() != tt.errMsg {
					t.Fatalf("err =\n%v\nwant\n%s", err, tt.errMsg)
				}
				if h, ok := err.(interface{ Hint() string }); tt.hint != "" && (!ok || h.Hint() != tt.hint) {
					t.Errorf("hint %v, want %q", err, tt.hint)
				}
				return
			}
			if err != nil || leave != tt.leave || eng != tt.eng {
				t.Fatalf("leave=%v engineForce=%v err=%v", leave, eng, err)
			}
		})
	}
}

func TestCountNamedTruncates(t *testing.T) {
	got := countNamed(7, "service", []string{"a", "b", "c", "d", "e", "f", "g"})
	if got != "7 services (a, b, c, d, e, ...)" {
		t.Errorf("got %q", got)
	}
}

func TestLeave(t *testing.T) {
	ctx := context.Background()
	f := newFake().asManager()
	f.nodes = append(f.nodes, workerNode("w1", "w1", swarm.NodeStateReady))
	f.nets = append(f.nets, overlay("micro", "10.10.0.0/24", true, false), network.Inspect{Name: "bridge", Scope: "local"})
	f.services = []swarm.Service{svcOn("web", "micro")}
	f.configs, f.secrets = 2, 1

	_, err := Leave(ctx, f, false)
	var lm *LastManagerError
	if !errors.As(err, &lm) {
		t.Fatalf("err = %v, want LastManagerError", err)
	}
	if want := "this node is the last manager of the swarm: leaving destroys the swarm and everything in it: 1 service (web), 1 network (micro), 2 configs, 1 secret; 1 other node lose their swarm"; err.Error() != want {
		t.Errorf("err =\n%s\nwant\n%s", err, want)
	}
	if len(f.changes) != 0 {
		t.Fatalf("left anyway: %v", f.changes)
	}
	res, err := Leave(ctx, f, true)
	if err != nil || !res.Left || !reflect.DeepEqual(f.changes, []string{"leave force=true"}) {
		t.Fatalf("--force: %+v, %v, %v", res, err, f.changes)
	}
	// Now outside any swarm: nothing to do, no error.
	f.changes = nil
	if res, err := Leave(ctx, f, false); err != nil || res.Left || len(f.changes) != 0 {
		t.Errorf("inactive: %+v, %v, %v", res, err, f.changes)
	}
}
