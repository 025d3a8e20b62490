package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// greeter starts examples/greeter registered in the agent at addr under
// name, with the given TTL and interval in seconds.
func greeter(t *testing.T, addr, name string, ttl, interval int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t, "examples/greeter"), "--server_address", "127.0.0.1:0",
		"--register_ttl", fmt.Sprint(ttl), "--register_interval", fmt.Sprint(interval))
	cmd.Env = append(os.Environ(), "MICRO_SERVER_NAME="+name, "CONSUL_HTTP_ADDR="+addr)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("greeter %s:\n%s", name, logs.String())
		}
	})
	return cmd
}

// waitPassing waits until n instances of name pass.
func waitPassing(t *testing.T, c *registry.Client, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if e, _, err := c.API.Health().Service(name, "", true, nil); err == nil && len(e) == n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d passing instance(s) of %s never appeared", n, name)
}

// TestHealthLifeCycle: go-micro style greeters against a private agent.
// One is killed (no deregistration, like a crashed container): the watch
// reports passing -> critical within the TTL plus a small slack, health
// exits 3, prune removes it and only it. Another heartbeats less often
// than its TTL: lint finds it.
func TestHealthLifeCycle(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN="}
	const ttl = 3
	doomed := greeter(t, agent.Addr, "go.micro.srv.greeter", ttl, 1)
	greeter(t, agent.Addr, "go.micro.srv.greeter", ttl, 1)
	waitPassing(t, c, "go.micro.srv.greeter", 2)

	r := microctl(t, env, "health", "go.micro.srv.greeter")
	if r.Code != 0 || !strings.Contains(r.Stdout, "2 instance(s) of 1 service(s): 2 passing, 0 warning, 0 critical") {
		t.Fatalf("health: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Follow with the watch, then kill one greeter.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watch := exec.CommandContext(ctx, binary(t, "."), "health", "watch", "go.micro.srv.greeter", "-o", "json")
	watch.Env = append(os.Environ(), env...)
	stdout, _ := watch.StdoutPipe()
	stderr, _ := watch.StderrPipe()
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "watching ") {
				ready <- sc.Text()
			}
		}
	}()
	events := make(chan map[string]any, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e map[string]any
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Errorf("watch printed a line that is not JSON: %q", sc.Text())
				continue
			}
			events <- e
		}
		close(events)
	}()
	select {
	case line := <-ready:
		if !strings.Contains(line, "2 instance(s) of 1 service(s)") {
			t.Errorf("watch says %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch never said it was watching")
	}
	if err := doomed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	select {
	case e := <-events:
		if e["event"] != "transition" || e["from"] != "passing" || e["to"] != "critical" || e["check_type"] != "ttl" {
			t.Fatalf("first event %v", e)
		}
		// The last heartbeat was at most one interval before the kill.
		t.Logf("passing -> critical seen %s after the kill (TTL %ds)", time.Since(killed).Round(time.Millisecond), ttl)
	case <-time.After(ttl*time.Second + 5*time.Second):
		t.Fatal("no transition within TTL + 5s")
	}
	// Ctrl-C ends the watch cleanly, with exit 0.
	_ = watch.Process.Signal(syscall.SIGINT)
	if err := watch.Wait(); err != nil {
		t.Errorf("watch after SIGINT: %v (want exit 0)", err)
	}

	r = microctl(t, env, "health")
	if r.Code != 3 || !strings.Contains(r.Stdout, "1 critical") || !strings.Contains(r.Stderr, "1 of 3 instance(s) critical or worse (--fail-on critical)") {
		t.Errorf("health after the kill: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r = microctl(t, env, "health", "--fail-on", "never"); r.Code != 0 {
		t.Errorf("--fail-on never: exit %d", r.Code)
	}

	// Without a terminal and without --yes, prune refuses.
	if r = microctl(t, env, "registry", "prune", "--critical-for", "1s"); r.Code != 2 || !strings.Contains(r.Stderr, "pass --yes") {
		t.Errorf("prune without --yes: exit %d %s", r.Code, r.Stderr)
	}
	r = microctl(t, env, "registry", "prune", "--critical-for", "2s", "--yes", "-o", "json")
	var pruned struct {
		Removed []registry.Removal
		Failed  []any
	}
	if err := json.Unmarshal([]byte(r.Stdout), &pruned); r.Code != 0 || err != nil || len(pruned.Removed) != 1 ||
		pruned.Removed[0].Via != "agent" || len(pruned.Failed) != 0 {
		t.Fatalf("prune: exit %d, %+v\n%s%s", r.Code, pruned, r.Stdout, r.Stderr)
	}
	if r = microctl(t, env, "health"); r.Code != 0 || !strings.Contains(r.Stdout, "2 instance(s) of 2 service(s): 2 passing") {
		t.Errorf("health after prune: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// Lint: a greeter heartbeating every 4s with a 2s TTL.
	greeter(t, agent.Addr, "go.micro.srv.slow", 2, 4)
	waitPassing(t, c, "go.micro.srv.slow", 1)
	r = microctl(t, env, "health", "lint", "go.micro.srv.slow", "--no-docker", "-o", "json")
	var lint struct {
		Findings []struct{ Rule, Severity, Instance string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &lint); r.Code != 3 || err != nil {
		t.Fatalf("lint: exit %d %v\n%s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	var rules []string
	for _, f := range lint.Findings {
		rules = append(rules, f.Rule+":"+f.Severity)
	}
	if got := strings.Join(rules, ","); got != "interval-ge-ttl:error,unreachable-address:error" {
		t.Errorf("lint rules = %s", got)
	}
}

func TestHealthBadInput(t *testing.T) {
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := agent.Client(t, agent.Token)
	in := registry.Instance{Name: "go.micro.srv.greeter", ID: "greeter-1", Version: "1.0", Address: "10.0.1.5", Port: 80,
		TTL: time.Minute, Interval: 10 * time.Second}
	reg := in.Registration()
	// After go-micro's own tags: a second version tag would be skipped (go-micro
	// takes the first), a metadata tag that does not decode is skipped alone.
	reg.Tags = append(reg.Tags, "t-zz")
	if err := root.API.Agent().ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}
	tok := agent.TokenWith(t, "nodes", `node_prefix "" { policy = "read" }`)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	asRoot := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=" + agent.Token}
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stderr string
	}{
		{"unknown service", asRoot, []string{"registry", "get", "greeter"}, 1,
			"error: no service named greeter; did you mean go.micro.srv.greeter? (microctl registry ls lists the services)"},
		{"unknown service in health", asRoot, []string{"health", "go.micro.srv.greter"}, 1,
			"error: no service named go.micro.srv.greter; did you mean go.micro.srv.greeter?"},
		{"malformed tag: shown, warned, no crash", asRoot, []string{"registry", "get", "go.micro.srv.greeter"}, 0,
			`warning: instance greeter-1 of go.micro.srv.greeter: malformed go-micro tag "t-zz" (not hex:`},
		{"consul unreachable", []string{"CONSUL_HTTP_ADDR=" + dead}, []string{"health"}, 1,
			"error: cannot reach Consul at " + dead + ": connection refused (set --consul-addr or CONSUL_HTTP_ADDR)"},
		{"token without service:read", []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=" + tok}, []string{"registry", "ls"}, 1,
			"error: Consul at " + agent.Addr + " refused the request: the token lacks service:read: every service was hidden by ACLs"},
		{"no token at all", []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN="}, []string{"health", "lint"}, 1,
			"the token lacks node:read"},
		{"unknown token", []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=00000000-0000-0000-0000-000000000000"}, []string{"health", "watch"}, 1,
			"ACL not found"},
		{"bad --state", asRoot, []string{"health", "--state", "dead"}, 2, "--state must be one of any, passing, warning, critical"},
		{"unknown instance", asRoot, []string{"registry", "deregister", "greeter-2", "--yes"}, 1, "no instance with ID greeter-2; did you mean greeter-1?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := microctl(t, tt.env, tt.args...)
			if r.Code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", r.Code, tt.code, r.Stdout, r.Stderr)
			}
			if !strings.Contains(r.Stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", r.Stderr, tt.stderr)
			}
			if tt.code != 0 && strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
				t.Errorf("error is not one line: %q", r.Stderr)
			}
			if strings.Contains(r.Stderr, "goroutine ") {
				t.Error("stack trace")
			}
		})
	}
}
