package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

func TestDoctorGreen(t *testing.T) {
	c := testenv.Consul(t)
	testenv.Docker(t)
	r := microctl(t, []string{"CONSUL_HTTP_ADDR=" + c.Addr}, "doctor", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("doctor exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	var rep struct {
		Healthy bool `json:"healthy"`
		Checks  []struct{ Check, Status string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil || !rep.Healthy || len(rep.Checks) < 6 {
		t.Fatalf("doctor -o json = %s (err %v)", r.Stdout, err)
	}
}

func TestDoctorWithConsulStopped(t *testing.T) {
	// A port where nothing listens stands for a stopped agent.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	r := microctl(t, []string{"CONSUL_HTTP_ADDR=" + addr}, "doctor")
	if r.Code != 3 {
		t.Fatalf("exit %d, want 3\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	want := fmt.Sprintf("cannot reach Consul at %s: connection refused (set --consul-addr or CONSUL_HTTP_ADDR)", addr)
	if !strings.Contains(r.Stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, r.Stdout)
	}
	// --consul-addr overrides the environment.
	r = microctl(t, []string{"CONSUL_HTTP_ADDR=127.0.0.1:9"}, "--consul-addr", addr, "doctor", "-o", "json")
	if !strings.Contains(r.Stdout, addr) || strings.Contains(r.Stdout, "127.0.0.1:9") {
		t.Errorf("--consul-addr did not override CONSUL_HTTP_ADDR:\n%s", r.Stdout)
	}
}

func TestBadInputIsOneLine(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `error: unknown command "frobnicate" for "microctl"`},
		{[]string{"doctor", "-o", "xml"}, 2, "must be table or json"},
		{[]string{"--docker-host", "tcp://127.0.0.1:1", "--consul-addr", "127.0.0.1:1", "doctor"}, 3, ""},
		{[]string{"--consul-token-file", "/nonexistent", "doctor"}, 3, ""},
	}
	for _, tt := range tests {
		r := microctl(t, nil, tt.args...)
		if r.Code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tt.args, r.Code, tt.code, r.Stdout, r.Stderr)
		}
		if tt.want != "" && (!strings.Contains(r.Stderr, tt.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0) {
			t.Errorf("%v: stderr %q, want one line containing %q", tt.args, r.Stderr, tt.want)
		}
		if strings.Contains(r.Stderr+r.Stdout, "goroutine ") {
			t.Errorf("%v: printed a stack trace", tt.args)
		}
	}
}

// TestGreeterRegistersTheGoMicroWay runs examples/greeter against the test
// Consul and reads its registration back as any go-micro client would.
func TestGreeterRegistersTheGoMicroWay(t *testing.T) {
	c := testenv.Consul(t)
	bin := binary(t, "examples/greeter")
	name := fmt.Sprintf("e2e.greeter.%d", time.Now().UnixNano())
	cmd := exec.Command(bin, "--server_address", "127.0.0.1:0", "--register_ttl", "5", "--register_interval", "2")
	cmd.Env = append(os.Environ(), "MICRO_SERVER_NAME="+name, "MICRO_SERVER_VERSION=1.2.3", "CONSUL_HTTP_ADDR="+c.Addr)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	logs := bufio.NewScanner(stderr)
	go func() {
		for logs.Scan() {
			t.Log(logs.Text())
		}
	}()

	var svc *api.ServiceEntry
	deadline := time.Now().Add(15 * time.Second)
	for svc == nil && time.Now().Before(deadline) {
		entries, _, err := c.API.Health().Service(name, "", true, nil)
		if err == nil && len(entries) == 1 {
			svc = entries[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	if svc == nil {
		t.Fatal("greeter never appeared as a passing instance")
	}
	s := svc.Service
	if !strings.HasPrefix(s.ID, name+"-") || len(s.ID) != len(name)+1+36 {
		t.Errorf("ID %q is not <name>-<uuid>", s.ID)
	}
	d := registry.DecodeTags(s.Tags)
	if d.Version != "1.2.3" || d.Metadata["registry"] != "consul" || d.Metadata["protocol"] != "http" ||
		len(d.Endpoints) != 1 || d.Endpoints[0].Name != "Greeter.Hello" || len(d.Malformed)+len(d.Other) != 0 {
		t.Errorf("tags decode to %+v", d)
	}
	if s.Meta[registry.MetaRegisterTTL] != "5s" || s.Meta[registry.MetaRegisterInterval] != "2s" {
		t.Errorf("meta = %v, want TTL 5s and interval 2s", s.Meta)
	}
	if len(svc.Checks) != 2 || svc.Checks[1].CheckID != "service:"+s.ID || svc.Checks[1].Type != "ttl" {
		t.Errorf("checks = %+v, want serfHealth and a ttl check service:%s", svc.Checks, s.ID)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s:%d/", s.Address, s.Port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Hello from "+s.ID+"\n" {
		t.Errorf("GET / = %q", body)
	}
	// Heartbeats keep it passing past one TTL.
	time.Sleep(6 * time.Second)
	if checks, _, _ := c.API.Health().Checks(name, nil); len(checks) != 1 || checks[0].Status != api.HealthPassing {
		t.Errorf("after one TTL the check is %+v, want passing", checks)
	}
	// SIGTERM: it deregisters and exits 0.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("greeter exited with %v after SIGTERM", err)
		}
	case <-ctx.Done():
		t.Fatal("greeter did not exit after SIGTERM")
	}
	if entries, _, _ := c.API.Catalog().Service(name, "", nil); len(entries) != 0 {
		t.Errorf("still registered after SIGTERM: %d instances", len(entries))
	}
}
