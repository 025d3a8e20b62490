package keys

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
)

// TestAuditLogAndRetention: key log lists the ring's records in time order,
// --since filters them, and a write with AuditKeep deletes older ones in
// its own transaction.
func TestAuditLogAndRetention(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	clk := newClock()
	day := 24 * time.Hour
	s := newStore(t, c, clk)
	if _, err := s.Init(ctx, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		clk.Advance(10 * day)
		if _, err := s.Rotate(ctx, RotateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Not ours: a nested prefix and a foreign value.
	if _, err := c.API.KV().Put(&api.KVPair{Key: s.AuditPrefix() + "x/20200101T000000Z-init-g1-000000", Value: []byte(`{"op":"init"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	log, err := s.Log(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	ops := []string{}
	for _, e := range log {
		ops = append(ops, e.Op)
	}
	if len(log) != 3 || ops[0] != "init" || ops[1] != "rotate" || log[2].Generation != 3 || !log[1].At.Before(log[2].At) || log[0].Who != "tester@test" {
		t.Fatalf("log = %+v", log)
	}
	if recent, _ := s.Log(ctx, 5*day); len(recent) != 1 || recent[0].Generation != 3 {
		t.Fatalf("--since 5d: %+v", recent)
	}
	clk.Advance(10 * day)
	keeper := newStore(t, c, clk, WithAuditKeep(15*day))
	res, err := keeper.Rotate(ctx, RotateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.AuditPruned != 2 {
		t.Fatalf("audit_pruned = %d, want 2 (the records 30 and 20 days old)", res.AuditPruned)
	}
	log, _ = s.Log(ctx, 0)
	if len(log) != 2 || log[0].Generation != 3 || log[1].Generation != 4 {
		t.Fatalf("after retention: %+v", log)
	}
	if e, _ := c.KVGet(ctx, s.AuditPrefix()+"x/20200101T000000Z-init-g1-000000"); e == nil {
		t.Fatal("retention deleted a record of another prefix")
	}
}
