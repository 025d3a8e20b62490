package swarm

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestJoinToken(t *testing.T) {
	ctx := context.Background()
	f := newFake().asManager()
	res, err := JoinToken(ctx, f, swarm.NodeRoleWorker, false)
	want := TokenResult{Role: "worker", Token: "SWMTKN-1-abc-worker", ManagerAddr: "10.1.0.1:2377",
		Command: "microctl swarm join --token SWMTKN-1-abc-worker 10.1.0.1:2377"}
	if err != nil || !reflect.DeepEqual(res, want) || len(f.changes) != 0 {
		t.Errorf("got %+v, %v, changes %v", res, err, f.changes)
	}
	res, err = JoinToken(ctx, f, swarm.NodeRoleManager, true)
	if err != nil || !res.Rotated || res.Token != "SWMTKN-1-abc-manager2" ||
		!reflect.DeepEqual(f.changes, []string{"update worker=false manager=true"}) {
		t.Errorf("rotate: %+v, %v, changes %v", res, err, f.changes)
	}
	if _, err := JoinToken(ctx, f, "admin", false); err == nil {
		t.Error("role admin accepted")
	}
	var nm *NotManagerError
	if _, err := JoinToken(ctx, newFake(), swarm.NodeRoleWorker, false); !errors.As(err, &nm) {
		t.Errorf("not in a swarm: err = %v", err)
	}
}
