package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
)

// The lock on the real engine: a second create of the config is refused as
// a conflict, which is what makes it a lock.
func TestLockOnEngine(t *testing.T) {
	cli := testenv.Manager(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	stack := "itlock" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := AcquireLock(ctx, cli, stack, LockOptions{Holder: "first"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = first.Release(context.Background()) })
	_, err = AcquireLock(ctx, cli, stack, LockOptions{Holder: "second"})
	if !IsLockHeld(err) {
		t.Fatalf("second lock: %v, want held by first", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := AcquireLock(ctx, cli, stack, LockOptions{Holder: "second"})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	if err := second.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if held, _, err := currentLock(ctx, cli, stack); err != nil || held != nil {
		t.Errorf("lock left behind: %+v, %v", held, err)
	}
}
