package call

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/call"
	"github.com/microctl/microctl/pkg/registry"
)

// exitCode mirrors cmd.ExitCode (which this package cannot import) for
// the errors run returns.
func exitCode(err error) int {
	var u *cmdutil.UsageError
	var h *cmdutil.UnhealthyError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	case errors.As(err, &h):
		return 3
	}
	return 1
}

func TestFlags(t *testing.T) {
	o, err := cmdtest.Parse(t, NewCmdCall, "svc", "A.B", `{"x":1}`, "--all", "-H", "k=v", "-H", "t=a=b", "--timeout", "2s")
	if err != nil {
		t.Fatal(err)
	}
	if o.Service != "svc" || o.Endpoint != "A.B" || o.Body != `{"x":1}` || !o.All || o.Timeout != 2*time.Second ||
		strings.Join(o.Headers, ",") != "k=v,t=a=b" {
		t.Fatalf("options %+v", o)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"svc"}, "accepts between 2 and 3 arg(s)"},
		{[]string{"svc", "A.B", "{}", "-d", "{}"}, "give the request JSON once"},
		{[]string{"svc", "A.B", "--all", "--instance", "x"}, "exclude each other"},
		{[]string{"svc", "A.B", "-H", "novalue"}, "want KEY=VALUE"},
		{[]string{"svc", "A.B", "--timeout", "0s"}, "must be positive"},
	} {
		_, err := cmdtest.Parse(t, NewCmdCall, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

type fakeRegistry struct {
	call.Registry
	instances []registry.ServiceInstance
}

func (f *fakeRegistry) ServiceInstances(_ context.Context, s string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error) {
	if s != "greeter" {
		return nil, nil, registry.ACLFiltering{}, nil
	}
	return f.instances, nil, registry.ACLFiltering{}, nil
}

func (f *fakeRegistry) ServiceNames(context.Context) ([]string, error) {
	return []string{"greeter"}, nil
}

// microRPC answers like a go-micro server (see pkg/call's test server):
// 200, the response JSON, or an empty body and Micro-Error.
func microRPC(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	if req.Name == "" {
		w.Header().Set("Micro-Error", `{"id":"greeter","code":400,"detail":"name is\nrequired","status":"Bad Request"}`)
		return
	}
	_, _ = w.Write([]byte(`{"msg":"Hello ` + req.Name + `"}`))
}

func setup(t *testing.T, tty bool, stdin string, extra ...registry.ServiceInstance) (*Options, *strings.Builder, *strings.Builder) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(microRPC))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	ins := registry.ServiceInstance{ID: "greeter-1", Service: "greeter", Node: "n1", Address: host, Port: p,
		Tags:   registry.EncodeEndpoints([]registry.Endpoint{{Name: "Greeter.Call"}}),
		Checks: []registry.Check{{CheckID: "service:greeter-1", ServiceID: "greeter-1", Status: "passing"}}}
	reg := &fakeRegistry{instances: append([]registry.ServiceInstance{ins}, extra...)}
	ios, in, _, _ := cmdutil.Test()
	in.WriteString(stdin)
	out, errOut := &strings.Builder{}, &strings.Builder{}
	ios.Out, ios.ErrOut = out, errOut
	ios.SetTTY(tty, tty)
	return &Options{IO: ios, Registry: func() (call.Registry, error) { return reg, nil }, Service: "greeter",
		Endpoint: "Greeter.Call", Timeout: 5 * time.Second}, out, errOut
}

func TestRunOutput(t *testing.T) {
	ctx := context.Background()
	o, out, _ := setup(t, true, "")
	o.Body = `{"name":"alice"}`
	if err := run(ctx, o); err != nil || out.String() != "{\n  \"msg\": \"Hello alice\"\n}\n" {
		t.Fatalf("terminal: %q %v", out.String(), err)
	}
	o, out, _ = setup(t, false, `{"name":"bob"}`)
	o.Body = "-"
	if err := run(ctx, o); err != nil || out.String() != `{"msg":"Hello bob"}`+"\n" {
		t.Fatalf("piped, stdin: %q %v", out.String(), err)
	}
	// A go-micro error: exit 1, its detail on one line.
	o, _, _ = setup(t, false, "")
	err := run(ctx, o)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "400 Bad Request: name is required") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("go-micro error: %v", err)
	}
	o, _, _ = setup(t, false, "")
	o.Body = `{"name":`
	if err := run(ctx, o); exitCode(err) != 2 {
		t.Fatalf("bad JSON: %v (exit %d)", err, exitCode(err))
	}
	o, out, _ = setup(t, false, "")
	o.Body, o.Output = `{"name":"eve"}`, cmdutil.FormatJSON
	if err := run(ctx, o); err != nil {
		t.Fatal(err)
	}
	var res call.Result
	var msg struct{ Msg string }
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil || json.Unmarshal(res.Calls[0].Response, &msg) != nil || msg.Msg != "Hello eve" {
		t.Fatalf("-o json: %s %v", out.String(), err)
	}
}

func TestRunAll(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close() // a passing instance nobody answers on
	p, _ := strconv.Atoi(port)
	dead := registry.ServiceInstance{ID: "greeter-2", Service: "greeter", Node: "n1", Address: "127.0.0.1", Port: p,
		Checks: []registry.Check{{CheckID: "service:greeter-2", ServiceID: "greeter-2", Status: "passing"}}}
	o, out, errOut := setup(t, false, "", dead)
	o.Body, o.All = `{"name":"x"}`, true
	err := run(context.Background(), o)
	var unhealthy *cmdutil.UnhealthyError
	if !errors.As(err, &unhealthy) || exitCode(err) != 3 || !strings.Contains(err.Error(), "1 of 2") {
		t.Fatalf("--all with a dead instance: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "greeter-1") || !strings.Contains(lines[1], `{"msg":"Hello x"}`) ||
		!strings.Contains(lines[2], "FAIL") || !strings.Contains(lines[2], "connection refused") {
		t.Fatalf("table:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "on 2 passing instance(s) of 2") {
		t.Fatalf("stderr %q", errOut.String())
	}
}

func TestComplete(t *testing.T) {
	o, _, _ := setup(t, false, "")
	if got, _ := complete(context.Background(), o, nil); strings.Join(got, ",") != "greeter" {
		t.Fatalf("services %v", got)
	}
	if got, _ := complete(context.Background(), o, []string{"greeter"}); strings.Join(got, ",") != "Greeter.Call" {
		t.Fatalf("endpoints %v", got)
	}
}
