package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// TestLockLongWaitKeepsSession: a waiter that waits longer than twice its
// session's TTL (when Consul invalidates an unrenewed session) still holds
// a live session once it acquires the lock: it renews while it waits.
func TestLockLongWaitKeepsSession(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()
	first, err := c.AcquireLock(ctx, "locks/long", nil, registry.WithLockTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *registry.Lock, 1)
	go func() {
		l, err := c.AcquireLock(ctx, "locks/long", nil, registry.WithLockTTL(10*time.Second), registry.WithLockWait(2*time.Minute))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	time.Sleep(25 * time.Second) // more than 2 x TTL
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second := <-got
	if second == nil {
		t.Fatal("the waiter did not get the lock")
	}
	defer second.Release(ctx)
	if se, _, err := c.API.Session().Info(second.Session, nil); err != nil || se == nil {
		t.Fatalf("the waiter's session is gone right after it acquired the lock: %v", err)
	}
	if e, _ := c.KVGet(ctx, "locks/long"); e == nil || e.Session != second.Session {
		t.Fatalf("lock key: %+v", e)
	}
}
