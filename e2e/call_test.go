package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
)

// TestCallGreeter runs two greeters with -rpc against a private Consul and
// calls them with the built microctl as an operator would: the go-micro
// rpc endpoint, the HTTP one, --all, a go-micro error, a typo, -o json.
func TestCallGreeter(t *testing.T) {
	agent := testenv.StartAgent(t)
	bin := binary(t, "examples/greeter")
	name := fmt.Sprintf("e2e.call.%d", time.Now().UnixNano())
	for range 2 {
		cmd := exec.Command(bin, "--server_address", "127.0.0.1:0", "--register_ttl", "10", "--register_interval", "2", "-rpc")
		cmd.Env = append(os.Environ(), "MICRO_SERVER_NAME="+name, "CONSUL_HTTP_ADDR="+agent.Addr)
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		go func() {
			for s := bufio.NewScanner(stderr); s.Scan(); {
				t.Log(s.Text())
			}
		}()
	}
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := microctl(t, env, "call", name, "Greeter.Hello", "--all")
		if r.Code == 0 && strings.Count(r.Stdout, "Hello from") == 2 {
			t.Logf("$ microctl call %s Greeter.Hello --all\n%s%s", name, r.Stderr, r.Stdout)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two greeters never answered --all: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	r := microctl(t, env, "call", name, "Greeter.Call", `{"name": "e2e"}`)
	var rsp struct{ Msg string }
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rsp) != nil || !strings.HasPrefix(rsp.Msg, "Hello e2e from "+name+"-") {
		t.Fatalf("rpc call: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("$ microctl call %s Greeter.Call '{\"name\": \"e2e\"}'\n%s", name, r.Stdout)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"call", name, "Greeter.Call", "{}"}, 1, "400 Bad Request: name is required"},
		{[]string{"call", name, "Greeter.Cal"}, 1, "did you mean Greeter.Call?"},
		{[]string{"call", name + "x", "Greeter.Call"}, 1, "did you mean " + name + "?"},
		{[]string{"call", name, "Greeter.Call", "{"}, 2, "not valid JSON"},
	} {
		r := microctl(t, env, tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q on one line", tc.args, r.Code, r.Stderr, tc.code, tc.want)
		}
		t.Logf("$ microctl %s\n%s", strings.Join(tc.args, " "), r.Stderr)
	}

	r = microctl(t, env, "call", name, "Greeter.Call", "-d", `{"name":"json"}`, "--all", "-o", "json")
	var res struct {
		Protocol string `json:"protocol"`
		Calls    []struct {
			Response json.RawMessage `json:"response"`
			Error    string          `json:"error"`
		} `json:"calls"`
	}
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &res) != nil || len(res.Calls) != 2 || res.Protocol != "go-micro rpc" {
		t.Fatalf("-o json --all: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
