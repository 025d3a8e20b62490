package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/bench"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/registry"
)

// benchResult is the part of `microctl bench -o json` the tests read.
type benchResult struct {
	Engine   string            `json:"engine"`
	Targets  []string          `json:"targets"`
	Requests uint64            `json:"requests"`
	Status   map[string]uint64 `json:"status"`
	Errors   struct {
		Total int64 `json:"total"`
	} `json:"errors"`
}

func parseBench(t *testing.T, r Result) benchResult {
	t.Helper()
	var res benchResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("stdout is not bench JSON: %v\n%s\nstderr: %s", err, r.Stdout, r.Stderr)
	}
	return res
}

// TestBenchFirstRun is what a new user types first: no URL.
func TestBenchFirstRun(t *testing.T) {
	r := microctl(t, nil, "bench", "-d", "500ms", "-c", "8", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	res := parseBench(t, r)
	if res.Requests == 0 || res.Errors.Total != 0 || res.Engine != "epoll" {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(r.Stderr, "built-in target") {
		t.Errorf("stderr does not name the built-in target: %q", r.Stderr)
	}
}

// TestServeThenBench runs the two commands as separate processes, as the
// benchmark harness does, and stops serve the way a user does (SIGINT).
func TestServeThenBench(t *testing.T) {
	addr := freeLoopback(t)
	serve := exec.Command(binary(t, "."), "serve", "--addr", addr, "--loops", "1")
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer serve.Process.Kill()
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() || !strings.Contains(lines.Text(), "listening on http://"+addr) {
		t.Fatalf("serve said %q", lines.Text())
	}

	r := microctl(t, nil, "bench", "-n", "2000", "-c", "10", "-o", "json", "http://"+addr+"/hello")
	if r.Code != 0 {
		t.Fatalf("bench exit %d\n%s", r.Code, r.Stderr)
	}
	if res := parseBench(t, r); res.Requests != 2000 || res.Status["200"] != 2000 {
		t.Fatalf("result %+v", res)
	}

	serve.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		var rest strings.Builder
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		err := serve.Wait()
		if err == nil && !strings.Contains(rest.String(), "2000 requests") {
			err = fmt.Errorf("serve's last words: %q", rest.String())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after SIGINT: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}

func TestBenchUnreachableIsOneLine(t *testing.T) {
	addr := freeLoopback(t)
	r := microctl(t, nil, "bench", "-d", "30s", "http://"+addr+"/")
	if r.Code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.Code, r.Stderr)
	}
	last := strings.TrimSpace(r.Stderr[strings.LastIndex(strings.TrimSpace(r.Stderr), "\n")+1:])
	want := "error: cannot connect to " + addr + ": connection refused ("
	if !strings.HasPrefix(last, want) {
		t.Fatalf("last line %q, want it to start with %q", last, want)
	}
}

// TestBenchService spreads the load over the passing instances of a
// service registered the go-micro way, and leaves out the critical one.
func TestBenchService(t *testing.T) {
	c := testenv.Consul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("microctl-e2e-bench-%d", time.Now().UnixNano())

	var servers []*bench.Server
	for i := 0; i < 2; i++ {
		s, err := bench.NewServer(bench.WithServerAddr("127.0.0.1:0"), bench.WithServerLoops(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		defer s.Stop(context.Background())
		servers = append(servers, s)
	}
	register := func(id string, port int, pass bool) {
		in := registry.Instance{Name: name, Version: "latest", ID: id, Address: "127.0.0.1", Port: port,
			TTL: time.Minute, Interval: 30 * time.Second}
		r := registry.NewRegistrar(c, in)
		if pass {
			if err := r.Register(ctx); err != nil {
				t.Fatal(err)
			}
		} else if err := c.API.Agent().ServiceRegister(in.Registration()); err != nil {
			// Registered without the first pass: a TTL check starts critical.
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Deregister(context.Background()) })
	}
	for i, s := range servers {
		register(fmt.Sprintf("%s-%d", name, i), s.Addr().(*net.TCPAddr).Port, true)
	}
	dead := freeLoopback(t)
	_, port, _ := net.SplitHostPort(dead)
	var deadPort int
	fmt.Sscan(port, &deadPort)
	register(name+"-critical", deadPort, false)

	r := microctl(t, []string{"CONSUL_HTTP_ADDR=" + c.Addr}, "bench", "--service", name, "-n", "1000", "-c", "4", "-o", "json", "/greeter/say")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	res := parseBench(t, r)
	if len(res.Targets) != 2 || res.Requests != 1000 || res.Errors.Total != 0 {
		t.Fatalf("result %+v", res)
	}
	for i, s := range servers {
		if n := s.Stats().Requests; n != 500 {
			t.Errorf("instance %d served %d requests, want 500", i, n)
		}
	}

	r = microctl(t, []string{"CONSUL_HTTP_ADDR=" + c.Addr}, "bench", "--service", name+"-none", "-n", "10")
	if r.Code != 1 || !strings.Contains(r.Stderr, "has no passing instance") {
		t.Fatalf("unknown service: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

func freeLoopback(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestBenchJWT: a bare --jwt signs one token with the key ring's current
// key, and every request carries it; the target verifies each one against
// the ring's key set, as the example gateway does.
func TestBenchJWT(t *testing.T) {
	c := testenv.Consul(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := fmt.Sprintf("microctl-e2e/bench-jwt-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		for _, p := range []string{path + "/", keys.LockPrefix + path, keys.AuditPrefix + path + "/"} {
			c.API.KV().DeleteTree(p, nil)
		}
	})
	store, err := keys.NewStore(c, keys.WithPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Init(ctx, keys.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ks, _, err := store.KeySet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var verified, refused atomic.Int64
	var subject atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		v, err := ks.Verify(tok, time.Now(), keys.DefaultLeeway)
		if !ok || err != nil {
			refused.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		subject.Store(v.Subject)
		verified.Add(1)
	}))
	defer srv.Close()

	r := microctl(t, []string{"CONSUL_HTTP_ADDR=" + c.Addr, "MICROCTL_KEY_PATH=" + path},
		"bench", "--jwt", "-n", "300", "-c", "3", "-o", "json", srv.URL+"/")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	res := parseBench(t, r)
	if res.Status["200"] != 300 || verified.Load() != 300 || refused.Load() != 0 {
		t.Fatalf("status %v; target verified %d, refused %d", res.Status, verified.Load(), refused.Load())
	}
	if subject.Load() != "microctl-bench" {
		t.Errorf("token subject %v", subject.Load())
	}
	if strings.Contains(r.Stdout, "Bearer ey") {
		t.Error("the token appears in the JSON result")
	}
}
