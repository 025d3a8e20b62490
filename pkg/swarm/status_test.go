package swarm

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestNodeProblems(t *testing.T) {
	drained := workerNode("w3", "w3", swarm.NodeStateReady)
	drained.Spec.Availability = swarm.NodeAvailabilityDrain
	down := workerNode("w2aaaaaaaaaaaaaa", "w2", swarm.NodeStateDown)
	down.Status.Message = "heartbeat failure"
	tests := []struct {
		name  string
		nodes []swarm.Node
		want  []string
	}{
		{"healthy", []swarm.Node{managerNode("m1", "m1", true, swarm.ReachabilityReachable, swarm.NodeStateReady), drained}, nil},
		{"worker down", []swarm.Node{down}, []string{"node w2 (w2aaaaaaaaaa) is down: heartbeat failure"}},
		{"manager unreachable", []swarm.Node{managerNode("m2", "m2", false, swarm.ReachabilityUnreachable, swarm.NodeStateDown)},
			[]string{"node m2 (m2) is down", "manager m2 (m2) is unreachable"}},
		{"disconnected", []swarm.Node{workerNode("w4", "w4", swarm.NodeStateDisconnected)}, []string{"node w4 (w4) is disconnected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nodes []SwarmNode
			for _, n := range tt.nodes {
				nodes = append(nodes, NewSwarmNode(n, "m1"))
			}
			if got := NodeProblems(nodes); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSortNodes(t *testing.T) {
	nodes := []SwarmNode{
		{ID: "3", Hostname: "b", Role: "worker"}, {ID: "2", Hostname: "z", Role: "manager"},
		{ID: "1", Hostname: "y", Role: "manager", Leader: true}, {ID: "4", Hostname: "a", Role: "worker"},
	}
	SortNodes(nodes)
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	if !reflect.DeepEqual(ids, []string{"1", "2", "4", "3"}) {
		t.Errorf("order %v", ids)
	}
}

func TestStatus(t *testing.T) {
	ctx := context.Background()
	f := newFake().asManager()
	f.nodes = append(f.nodes, workerNode("w1", "w1", swarm.NodeStateReady))
	rep, err := Status(ctx, f)
	if err != nil || !rep.Healthy || len(rep.Nodes) != 2 || rep.Managers != 1 || !rep.Nodes[0].Self || rep.Role != "manager" ||
		rep.ManagerAddr != "10.1.0.1:2377" || len(rep.Networks) != 1 || len(rep.Problems) != 0 {
		t.Fatalf("%+v, %v", rep, err)
	}
	f.nodes[1].Status.State = swarm.NodeStateDown
	if rep, err = Status(ctx, f); err != nil || rep.Healthy || len(rep.Problems) != 1 {
		t.Errorf("down worker: %+v, %v", rep, err)
	}
	var nm *NotManagerError
	if _, err := Status(ctx, newFake()); !errors.As(err, &nm) || nm.State != "inactive" {
		t.Errorf("inactive: %v", err)
	}
}
