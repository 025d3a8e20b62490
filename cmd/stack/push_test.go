package stack

import (
	"context"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"

	imagecmd "github.com/microctl/microctl/cmd/image"
	"github.com/microctl/microctl/internal/cmdutil"
	stk "github.com/microctl/microctl/pkg/stack"
)

// pushEngine is a manager with the plan's images and three nodes: itself,
// a ready worker whose engine (a unix socket that does not exist) cannot
// be reached, and a worker that is down.
type pushEngine struct {
	client.APIClient
	inspected []string
}

func (e *pushEngine) Info(context.Context) (system.Info, error) {
	var i system.Info
	i.Swarm.LocalNodeState, i.Swarm.ControlAvailable, i.Swarm.NodeID = swarm.LocalNodeStateActive, true, "self"
	return i, nil
}

func (e *pushEngine) NodeList(context.Context, swarm.NodeListOptions) ([]swarm.Node, error) {
	node := func(id, host string, st swarm.NodeState) swarm.Node {
		n := swarm.Node{ID: id}
		n.Description.Hostname, n.Status.Addr, n.Status.State = host, "10.0.0."+id[len(id)-1:], st
		return n
	}
	return []swarm.Node{node("self", "m1", swarm.NodeStateReady), node("w2", "w2", swarm.NodeStateReady), node("w3", "w3", swarm.NodeStateDown)}, nil
}

func (e *pushEngine) ImageInspect(_ context.Context, ref string, _ ...client.ImageInspectOption) (image.InspectResponse, error) {
	e.inspected = append(e.inspected, ref)
	if ref == "app/web:1" || ref == "app/worker:2" {
		return image.InspectResponse{ID: "sha256:" + strings.Repeat("a", 64)}, nil
	}
	return image.InspectResponse{}, cerrdefs.ErrNotFound
}

// A push that fails stops the deploy before the stack is touched, names
// each node that did not get the images, and never sends what the plan
// removes.
func TestPushImagesFailureStopsTheDeploy(t *testing.T) {
	ios, _, _, stderr := cmdutil.Test()
	f := cmdutil.NewFactory(ios)
	dir := t.TempDir()
	opts := &Options{IO: ios, f: f, Push: imagecmd.NodeFlags{EngineURL: "unix://" + dir + "/{hostname}.sock", Parallel: 2, Stall: 5 * time.Second}}
	plan := &stk.Plan{Stack: "shop", Services: []stk.ServicePlan{
		{Name: "web", Action: stk.ActionCreate, Image: "app/web:1"},
		{Name: "worker", Action: stk.ActionUnchanged, Image: "app/worker:2"},
		{Name: "old", Action: stk.ActionRemove, Image: "app/old:0"},
	}}
	eng := &pushEngine{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := pushImages(ctx, opts, eng, plan)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"--push-images:", "w2: inspect app/web:1", "w3: node is down: not tried", "nothing of stack shop was changed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Join(eng.inspected, " ") != "app/web:1 app/worker:2" {
		t.Errorf("inspected on the source: %v", eng.inspected)
	}
	if !strings.Contains(stderr.String(), "--push-images: app/web:1 app/worker:2 to every node that lacks them") {
		t.Errorf("stderr: %s", stderr.String())
	}
}
