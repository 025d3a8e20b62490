package registry_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

func TestTxn(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()

	// Create-only, then CAS against the index read.
	txn := &registry.Txn{}
	txn.CAS("t/a", []byte(`{"v":1}`), 0)
	txn.CAS("t/b", []byte(`{"v":1}`), 0)
	if err := c.Commit(ctx, txn); err != nil {
		t.Fatal(err)
	}
	a, _ := c.KVGet(ctx, "t/a")
	b, _ := c.KVGet(ctx, "t/b")

	// One stale index rolls back every operation.
	txn = &registry.Txn{}
	txn.CAS("t/a", []byte(`{"v":2}`), a.ModifyIndex)
	txn.CAS("t/b", []byte(`{"v":2}`), b.ModifyIndex-1)
	err := c.Commit(ctx, txn)
	var conflict *registry.TxnConflictError
	if !errors.As(err, &conflict) || conflict.SessionLost() || conflict.Failures[0].Key != "t/b" {
		t.Fatalf("stale CAS: err = %v", err)
	}
	if a2, _ := c.KVGet(ctx, "t/a"); string(a2.Value) != `{"v":1}` {
		t.Fatalf("t/a written by a rolled-back transaction: %s", a2.Value)
	}

	// A fence on a session that does not hold the lock key.
	l, err := c.AcquireLock(ctx, "locks/t", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	txn = &registry.Txn{}
	txn.CheckSession("locks/t", l.Session)
	txn.DeleteCAS("t/b", b.ModifyIndex)
	if err := c.Commit(ctx, txn); err != nil {
		t.Fatalf("fenced delete under the lock: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatal(err)
	}
	txn = &registry.Txn{}
	txn.CheckSession("locks/t", l.Session)
	txn.CAS("t/a", []byte(`{"v":3}`), a.ModifyIndex)
	if err := c.Commit(ctx, txn); !errors.As(err, &conflict) || !conflict.SessionLost() {
		t.Fatalf("write after releasing the lock: err = %v", err)
	}

	// Over Consul's limit is refused before sending.
	txn = &registry.Txn{}
	for range registry.MaxTxnOps + 1 {
		txn.CheckNotExists("t/none")
	}
	if err := c.Commit(ctx, txn); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("65 operations: %v", err)
	}
}

func TestKVDenied(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := agent.Client(t, agent.Token)
	ctx := context.Background()
	if _, err := root.API.KV().Put(&api.KVPair{Key: "cfg/app/x", Value: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := root.API.KV().Put(&api.KVPair{Key: "cfg/app/secret/y", Value: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	tok := agent.TokenWith(t, "ro", `key_prefix "cfg/app/" { policy = "read" }
key_prefix "cfg/app/secret/" { policy = "deny" }`)
	c := agent.Client(t, tok)

	l, err := c.KVList(ctx, "cfg/app/")
	if err != nil || !l.FilteredByACL || len(l.Entries) != 1 {
		t.Fatalf("list: %+v, %v", l, err)
	}
	_, err = c.KVGet(ctx, "cfg/app/secret/y")
	var denied *registry.KVDeniedError
	if !errors.As(err, &denied) || denied.Key != "cfg/app/secret/y" || denied.Access != "read" {
		t.Fatalf("get: err = %v", err)
	}
	txn := &registry.Txn{}
	txn.CAS("cfg/app/x", []byte(`{"v":2}`), 0)
	err = c.Commit(ctx, txn)
	if !errors.As(err, &denied) || denied.Key != "cfg/app/x" || denied.Access != "write" {
		t.Fatalf("txn: err = %v", err)
	}
	var pe *registry.PermissionError
	if !errors.As(err, &pe) {
		t.Fatal("a KVDeniedError must also be a PermissionError")
	}
	if !strings.Contains(denied.Hint(), `key_prefix "cfg/app/x" { policy = "write" }`) {
		t.Errorf("hint %q", denied.Hint())
	}
	_, err = c.AcquireLock(ctx, "locks/x", []byte(`{}`))
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "session:write") {
		t.Fatalf("lock without session rights: err = %v", err)
	}
}

func TestLockWaitsForHolder(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()
	first, err := c.AcquireLock(ctx, "locks/w", []byte(`{"who":"first"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AcquireLock(ctx, "locks/w", []byte(`{"who":"second"}`))
	var held *registry.LockHeldError
	if !errors.As(err, &held) || held.Session != first.Session || string(held.Holder) != `{"who":"first"}` {
		t.Fatalf("try-once while held: err = %v", err)
	}
	got := make(chan *registry.Lock)
	go func() {
		l, err := c.AcquireLock(ctx, "locks/w", []byte(`{"who":"second"}`), registry.WithLockWait(time.Minute))
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second := <-got
	if second == nil {
		t.Fatal("the waiter did not get the lock")
	}
	e, _ := c.KVGet(ctx, "locks/w")
	if e == nil || e.Session != second.Session {
		t.Fatalf("lock key after hand-over: %+v", e)
	}
	if err := second.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if e, _ := c.KVGet(ctx, "locks/w"); e != nil {
		t.Fatalf("released lock left its key: %+v", e)
	}
	// Destroying a holder's session from outside is noticed.
	third, err := c.AcquireLock(ctx, "locks/w", nil, registry.WithLockTTL(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.API.Session().Destroy(third.Session, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-third.Lost():
	case <-time.After(time.Minute):
		t.Fatal("Lost() not closed after the session was destroyed")
	}
	_ = third.Release(ctx)
}

// fakeWatcher replays a script of (index, value) answers.
type fakeWatcher struct {
	mu     sync.Mutex
	script []answer
	asked  []uint64
}

type answer struct {
	index uint64
	value string // "" = key absent
	err   error
}

func (f *fakeWatcher) KVWatch(ctx context.Context, key string, index uint64, wait time.Duration) (*registry.KVEntry, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, index)
	if len(f.script) == 0 {
		<-ctx.Done()
		return nil, index, ctx.Err()
	}
	a := f.script[0]
	f.script = f.script[1:]
	if a.err != nil {
		return nil, index, a.err
	}
	if a.value == "" {
		return nil, a.index, nil
	}
	return &registry.KVEntry{Key: key, Value: []byte(a.value), ModifyIndex: a.index}, a.index, nil
}

func TestFollowKV(t *testing.T) {
	f := &fakeWatcher{script: []answer{
		{index: 5, value: "a"},
		{index: 5, value: "a"}, // wait timed out: no change, no callback
		{err: errors.New("connection refused")},
		{index: 9, value: "b"},
		{index: 3, value: "b"}, // index went backwards (restore): reset to 0
		{index: 12, value: ""}, // deleted
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	var errs int
	done := make(chan error)
	go func() {
		done <- registry.FollowKV(ctx, f, "k", registry.FollowOptions{MinInterval: time.Millisecond, MaxBackoff: time.Millisecond,
			OnError: func(error) { errs++ }}, func(e *registry.KVEntry) {
			if e == nil {
				got = append(got, "<nil>")
			} else {
				got = append(got, string(e.Value))
			}
			if len(got) == 4 {
				cancel()
			}
		})
	}()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("FollowKV returned %v", err)
	}
	if strings.Join(got, ",") != "a,b,b,<nil>" || errs != 1 {
		t.Fatalf("delivered %v with %d errors", got, errs)
	}
	// Indexes asked: 0, 5, 5 (after the error), 5, 9, then 0 after the
	// index went backwards.
	want := []uint64{0, 5, 5, 5, 9, 0}
	if len(f.asked) < len(want) {
		t.Fatalf("asked %v", f.asked)
	}
	for i, w := range want {
		if f.asked[i] != w {
			t.Fatalf("asked indexes %v, want prefix %v", f.asked, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 12; n++ {
		d := registry.Backoff(n, 100*time.Millisecond, 5*time.Second)
		ceil := min(100*time.Millisecond<<(n-1), 5*time.Second)
		if d > ceil || d < ceil/2 {
			t.Errorf("Backoff(%d) = %s, want within [%s, %s]", n, d, ceil/2, ceil)
		}
	}
}

// silentKV accepts every read and never answers it.
type silentKV struct{ calls chan struct{} }

func (s silentKV) KVWatch(ctx context.Context, key string, index uint64, wait time.Duration) (*registry.KVEntry, uint64, error) {
	s.calls <- struct{}{}
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

// TestFollowKVBoundsASilentRead: a blocking read that never returns is
// given up after its wait plus the margin, reported, and retried; the
// follower is never stuck on one read.
func TestFollowKVBoundsASilentRead(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := silentKV{calls: make(chan struct{}, 10)}
	errs := make(chan error, 10)
	go registry.FollowKV(ctx, s, "k", registry.FollowOptions{Wait: 10 * time.Millisecond, Margin: 10 * time.Millisecond,
		MaxBackoff: time.Millisecond, OnError: func(err error) { errs <- err }}, func(*registry.KVEntry) {})
	err := <-errs
	if !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("error %q does not say the read went unanswered", err)
	}
	<-s.calls
	<-s.calls // a second read: the follower went on
}
