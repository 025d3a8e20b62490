package keys

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
)

// logLines collects a rotator's log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(t *testing.T, name string) func(string, ...any) {
	return func(format string, a ...any) {
		s := fmt.Sprintf(format, a...)
		t.Logf("%s: %s", name, s)
		l.mu.Lock()
		l.lines = append(l.lines, s)
		l.mu.Unlock()
	}
}

func (l *logLines) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rotations returns the audit records of rotations, in time order.
func rotations(t *testing.T, s *Store) []auditRecord {
	t.Helper()
	l, err := s.kv.KVList(context.Background(), s.AuditPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []auditRecord
	for _, e := range l.Entries {
		var r auditRecord
		if err := json.Unmarshal(e.Value, &r); err != nil {
			t.Fatal(err)
		}
		if r.Op == "rotate" {
			out = append(out, r)
		}
	}
	return out
}

// TestRotatorsRotateOncePerPeriod: two rotators on one ring rotate once per
// period, not twice; when the leader's session ends the other takes over;
// both stop cleanly.
func TestRotatorsRotateOncePerPeriod(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := ctxT(t)
	const every = 3 * time.Second
	admin := newStore(t, c, newClock(), WithClock(time.Now))
	if _, err := admin.Init(ctx, InitOptions{RotationPeriod: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	logs := map[string]*logLines{"rotA@test": {}, "rotB@test": {}}
	cancels := map[string]context.CancelFunc{}
	done := make(chan error, 2)
	for who, l := range logs {
		s := newStore(t, c, newClock(), WithClock(time.Now), WithActor(who))
		rctx, cancel := context.WithCancel(ctx)
		cancels[who] = cancel
		go func() {
			done <- s.RunRotator(rctx, RotatorOptions{Every: every, Check: 300 * time.Millisecond, RetryBase: 100 * time.Millisecond,
				RetryMax: time.Second, Logf: l.logf(t, who)})
		}()
	}
	waitFor(t, "three rotations", func() bool { return len(rotations(t, admin)) >= 3 })

	leaderKey, _ := c.KVGet(ctx, admin.RotatorKey())
	if leaderKey == nil || leaderKey.Session == "" {
		t.Fatal("no leader key")
	}
	leader := parseRotator(leaderKey.Value).Who
	other := map[string]string{"rotA@test": "rotB@test", "rotB@test": "rotA@test"}[leader]
	for _, r := range rotations(t, admin) {
		if r.Who != leader {
			t.Fatalf("rotation by %s while %s leads", r.Who, leader)
		}
	}
	if n := len(logs[other].matching("standby")); n != 1 {
		t.Errorf("%s said standby %d times", other, n)
	}
	// The leader dies (its session ends): the other takes over.
	if _, err := c.API.Session().Destroy(leaderKey.Session, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, other+" rotating", func() bool {
		rs := rotations(t, admin)
		return rs[len(rs)-1].Who == other
	})

	// Never twice per period: every key that was current signed for at
	// least `every` before the next rotation.
	ring, _ := admin.Ring(ctx)
	n := 0
	for _, k := range ring.Keys {
		if k.ActivatedAt != nil && k.DeactivatedAt != nil {
			n++
			if d := k.DeactivatedAt.Sub(*k.ActivatedAt); d < every {
				t.Errorf("key %s was current for only %s", k.Kid, d)
			}
		}
	}
	if n < 3 {
		t.Errorf("%d keys went through current", n)
	}
	for _, cancel := range cancels {
		cancel()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("rotator: %v", err)
		}
	}
	for who, l := range logs {
		if len(l.matching("stopped")) != 1 {
			t.Errorf("%s did not say it stopped", who)
		}
	}
	if e, _ := c.KVGet(ctx, admin.RotatorKey()); e != nil {
		t.Errorf("leader key left behind: %+v", e)
	}
}

// TestRotatorTokenCannotWrite: a rotator whose token may only read says why
// it cannot rotate, and retries with a growing backoff.
func TestRotatorTokenCannotWrite(t *testing.T) {
	t.Parallel()
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := agent.Client(t, agent.Token)
	ctx := ctxT(t)
	admin := newStore(t, root, newClock())
	if _, err := admin.Init(ctx, InitOptions{RotationPeriod: 4 * time.Second}); err != nil {
		t.Fatal(err)
	}
	tok := agent.TokenWith(t, "ro", `key_prefix "micro/config/jwt/" { policy = "read" }
key_prefix "microctl/" { policy = "read" }`)
	s := newStore(t, agent.Client(t, tok), newClock(), WithClock(time.Now))
	var l logLines
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- s.RunRotator(rctx, RotatorOptions{Every: 2 * time.Second, RetryBase: 100 * time.Millisecond, RetryMax: 2 * time.Second, Logf: l.logf(t, "ro")})
	}()
	waitFor(t, "four errors", func() bool { return len(l.matching("error:")) >= 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	errs := l.matching("error:")
	var waits []time.Duration
	for _, e := range errs {
		if !strings.Contains(e, "Permission denied") {
			t.Errorf("error line does not say why: %s", e)
		}
		_, after, ok := strings.Cut(e, "(retry in ")
		d, err := time.ParseDuration(strings.TrimSuffix(after, ")"))
		if !ok || err != nil {
			t.Fatalf("no retry delay in %q", e)
		}
		waits = append(waits, d)
	}
	if waits[3] <= waits[0] {
		t.Errorf("backoff does not grow: %v", waits)
	}
	if r, _ := admin.Ring(ctx); r.Generation != 1 {
		t.Errorf("a read-only rotator changed the ring: generation %d", r.Generation)
	}
}
