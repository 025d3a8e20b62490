package logs_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/logs"
)

// service creates a replicated service in its own stack (by label) from a
// test image and removes it at the end.
func service(t *testing.T, cli client.APIClient, stack, name, image string, replicas uint64, env []string, restart *swarm.RestartPolicy) {
	t.Helper()
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: stack + "_" + name, Labels: map[string]string{"com.docker.stack.namespace": stack}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: image, Env: env},
			RestartPolicy: restart,
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ServiceRemove(context.Background(), resp.ID) })
}

type collected struct {
	mu      sync.Mutex
	lines   []logs.Line
	notices []logs.Notice
}

func (c *collected) line(l logs.Line) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, l)
	return nil
}

func (c *collected) notice(n logs.Notice) {
	c.mu.Lock()
	c.notices = append(c.notices, n)
	c.mu.Unlock()
}

func (c *collected) snapshot() []logs.Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logs.Line(nil), c.lines...)
}

func unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

// TestLogsOfAStack: two greeters without Consul log a known start line;
// the merged logs have one per slot, in time order, named service.slot@node;
// --grep and --tail filter.
func TestLogsOfAStack(t *testing.T) {
	cli := testenv.Manager(t)
	stack := unique("itlogs")
	service(t, cli, stack, "greeter", "microctl/greeter:dev", 2, []string{"GREETER_NO_REGISTER=1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	listening := regexp.MustCompile(`greeter: \S+ \(.*\) listening on`)
	var got []logs.Line
	for {
		var c collected
		if err := logs.Stream(ctx, cli, logs.Options{Targets: []string{stack}, Tail: -1, OnNotice: c.notice}, c.line); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, l := range c.snapshot() {
			if listening.MatchString(l.Text) {
				got = append(got, l)
			}
		}
		if len(got) >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("never saw both greeters start; lines %v, notices %v", c.snapshot(), c.notices)
		case <-time.After(time.Second):
		}
	}
	slots := map[int]bool{}
	for i, l := range got {
		slots[l.Slot] = true
		if l.Service != stack+"_greeter" || l.Stack != stack || l.Node == "" || l.Task == "" || l.Time.IsZero() {
			t.Errorf("line %+v lacks its source", l)
		}
		if want := fmt.Sprintf("%s_greeter.%d@%s", stack, l.Slot, l.Node); l.Prefix() != want {
			t.Errorf("prefix %q, want %q", l.Prefix(), want)
		}
		if i > 0 && l.Time.Before(got[i-1].Time) {
			t.Errorf("out of order: %s before %s", got[i-1].Time, l.Time)
		}
	}
	if !slots[1] || !slots[2] {
		t.Errorf("slots %v, want 1 and 2", slots)
	}

	var g collected
	if err := logs.Stream(ctx, cli, logs.Options{Targets: []string{stack + "_greeter"}, Tail: -1, Grep: regexp.MustCompile(`^nothing-logs-this$`)}, g.line); err != nil {
		t.Fatal(err)
	}
	if n := len(g.snapshot()); n != 0 {
		t.Errorf("--grep matching nothing printed %d lines", n)
	}
	var one collected
	if err := logs.Stream(ctx, cli, logs.Options{Targets: []string{stack}, Tail: 1}, one.line); err != nil {
		t.Fatal(err)
	}
	if n := len(one.snapshot()); n != 2 {
		t.Errorf("--tail 1 over 2 tasks printed %d lines, want 2", n)
	}

	var nf *logs.NotFoundError
	if err := logs.Stream(ctx, cli, logs.Options{Targets: []string{stack + "-nope"}}, g.line); !errors.As(err, &nf) {
		t.Errorf("unknown target: %v", err)
	}
}

// TestLogsFollowAcrossRestarts follows a service whose task crashes at
// start and is restarted by Swarm: lines of the later tasks arrive while
// followed.
func TestLogsFollowAcrossRestarts(t *testing.T) {
	cli := testenv.Manager(t)
	stack := unique("itlogsf")
	delay := 500 * time.Millisecond
	service(t, cli, stack, "crash", "microctl/greeter:crash", 1, nil,
		&swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var c collected
	tasks := func() map[string]bool {
		seen := map[string]bool{}
		for _, l := range c.snapshot() {
			if strings.Contains(l.Text, "failing on start as asked") {
				seen[l.Task] = true
			}
		}
		return seen
	}
	followCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- logs.Stream(followCtx, cli, logs.Options{Targets: []string{stack}, Tail: -1, Follow: true, Poll: 500 * time.Millisecond, OnNotice: c.notice}, c.line)
	}()
	// Wait until the follow has seen the start line of three tasks, at
	// least two of which started after the follow did.
	for {
		seen := tasks()
		later := 0
		for _, l := range c.snapshot() {
			if seen[l.Task] && l.Time.After(start) {
				later++
			}
		}
		if len(seen) >= 3 && later >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			c.mu.Lock()
			t.Fatalf("saw %d task(s) crash while following; notices %v", len(seen), c.notices)
		case <-time.After(250 * time.Millisecond):
		}
	}
	// Finished tasks' streams are closed (the engine would keep them open
	// forever): the readers do not pile up with the restarts.
	for {
		seen := len(tasks())
		if n := logs.Readers(); seen >= 5 && n < int64(seen) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d readers open after %d tasks: finished tasks are not closed", logs.Readers(), len(tasks()))
		case <-time.After(250 * time.Millisecond):
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("follow ended with %v", err)
	}
	for _, l := range c.snapshot() {
		if l.Stream != "stderr" && strings.Contains(l.Text, "failing on start") {
			t.Errorf("log.Fatal writes to stderr; got %s", l.Stream)
		}
	}
}
