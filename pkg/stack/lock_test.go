package stack

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/swarm"
)

// fakeConfigs is the engine's config store: names are unique, as Swarm
// keeps them.
type fakeConfigs struct {
	LockAPI
	mu      sync.Mutex
	byID    map[string]swarm.Config
	next    int
	creates int
}

func newFakeConfigs() *fakeConfigs { return &fakeConfigs{byID: map[string]swarm.Config{}} }

func (f *fakeConfigs) ConfigCreate(_ context.Context, spec swarm.ConfigSpec) (swarm.ConfigCreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	for _, c := range f.byID {
		if c.Spec.Name == spec.Name {
			return swarm.ConfigCreateResponse{}, cerrdefs.ErrConflict.WithMessage("config " + spec.Name + " already exists")
		}
	}
	f.next++
	id := "cfg" + string(rune('0'+f.next))
	f.byID[id] = swarm.Config{ID: id, Spec: spec}
	return swarm.ConfigCreateResponse{ID: id}, nil
}

func (f *fakeConfigs) ConfigList(_ context.Context, o swarm.ConfigListOptions) ([]swarm.Config, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Config
	for _, c := range f.byID {
		// The engine's name filter matches prefixes.
		for _, n := range o.Filters.Get("name") {
			if strings.HasPrefix(c.Spec.Name, n) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

func (f *fakeConfigs) ConfigRemove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		return cerrdefs.ErrNotFound
	}
	delete(f.byID, id)
	return nil
}

func TestLockExcludesASecondDeploy(t *testing.T) {
	api := newFakeConfigs()
	ctx := context.Background()
	first, err := AcquireLock(ctx, api, "demo", LockOptions{Holder: "first", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Another stack whose name extends this one's is not affected.
	other, err := AcquireLock(ctx, api, "demo2", LockOptions{Holder: "other"})
	if err != nil {
		t.Fatalf("lock of another stack: %v", err)
	}
	_, err = AcquireLock(ctx, api, "demo", LockOptions{Holder: "second"})
	var held *LockHeldError
	if !errors.As(err, &held) || held.Holder != "first" || !strings.Contains(err.Error(), "another deploy of stack demo is running (first") {
		t.Fatalf("second deploy: %v, want the lock held by first", err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := AcquireLock(ctx, api, "demo", LockOptions{Holder: "second"})
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	_ = second.Release(ctx)
	_ = other.Release(ctx)
	if len(api.byID) != 0 {
		t.Errorf("configs left: %v", api.byID)
	}
}

func TestLockWaitsForTheFirst(t *testing.T) {
	api := newFakeConfigs()
	ctx := context.Background()
	first, err := AcquireLock(ctx, api, "demo", LockOptions{Holder: "first"})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		l, err := AcquireLock(ctx, api, "demo", LockOptions{Holder: "second", Wait: true, Poll: time.Millisecond,
			OnWait: func(*LockHeldError) { close(waiting) }})
		if err == nil {
			err = l.Release(ctx)
		}
		got <- err
	}()
	<-waiting
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the waiting deploy: %v", err)
	}
}

func TestLockWaitEndsWithContext(t *testing.T) {
	api := newFakeConfigs()
	if _, err := AcquireLock(context.Background(), api, "demo", LockOptions{Holder: "first"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err := AcquireLock(ctx, api, "demo", LockOptions{Wait: true, Poll: time.Millisecond, OnWait: func(*LockHeldError) { cancel() }})
	if !IsLockHeld(err) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the lock held and the wait cancelled", err)
	}
}

func TestLockExpiredIsTakenOver(t *testing.T) {
	api := newFakeConfigs()
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	if _, err := AcquireLock(ctx, api, "demo", LockOptions{Holder: "dead", TTL: time.Minute, Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Minute)
	l, err := AcquireLock(ctx, api, "demo", LockOptions{Holder: "new", Now: func() time.Time { return later }})
	if err != nil {
		t.Fatalf("expired lock not taken over: %v", err)
	}
	held, _, _ := currentLock(ctx, api, "demo")
	if held == nil || held.Holder != "new" {
		t.Errorf("lock now held by %+v, want new", held)
	}
	_ = l.Release(ctx)
}
