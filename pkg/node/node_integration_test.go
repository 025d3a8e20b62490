package node_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/node"
)

// TestDrainOnlyNodeRefused: on the one-engine swarm, draining its only
// node is refused with the reason, and nothing changes. (The drain itself
// needs the multi-node cluster lab; its sequence is tested with fakes.)
func TestDrainOnlyNodeRefused(t *testing.T) {
	cli := testenv.Manager(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 {
		t.Skipf("the swarm has %d nodes; this test is about the only node", len(nodes))
	}
	before := nodes[0]
	_, err = node.Drain(ctx, cli, nil, before.Description.Hostname, node.DrainOptions{})
	var re *node.RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "only node") {
		t.Fatalf("drain of the only node: %v, want a refusal naming the reason", err)
	}
	after, _, err := cli.NodeInspectWithRaw(ctx, before.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Spec.Availability != before.Spec.Availability || after.Meta.Version != before.Meta.Version {
		t.Errorf("a refused drain changed the node: %s v%d -> %s v%d", before.Spec.Availability, before.Meta.Version.Index,
			after.Spec.Availability, after.Meta.Version.Index)
	}
}

// TestListRealSwarm: node ls on the real engine and Consul agent finds the
// node, its role, and the agent running on it.
func TestListRealSwarm(t *testing.T) {
	cli := testenv.Manager(t)
	c := testenv.Consul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, warn, err := node.List(ctx, cli, node.Consul{C: c})
	if err != nil || warn != nil {
		t.Fatalf("err %v, warning %v", err, warn)
	}
	if len(rows) == 0 {
		t.Fatal("no nodes")
	}
	self := rows[0]
	if self.Role != "manager" || self.State != "ready" || self.Availability == "" {
		t.Errorf("row %+v", self)
	}
	// The test agent runs on this host: found by hostname or address.
	if self.ConsulAgent == "" || self.ConsulHealth != "passing" {
		t.Errorf("Consul agent on %s: %q (%s); want the test agent, passing", self.Hostname, self.ConsulAgent, self.ConsulHealth)
	}
}
