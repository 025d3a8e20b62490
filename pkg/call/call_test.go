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

	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// fakeRegistry embeds the interface and answers from a fixed list.
type fakeRegistry struct {
	Registry
	instances map[string][]registry.ServiceInstance
}

func (f *fakeRegistry) ServiceInstances(_ context.Context, s string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error) {
	return f.instances[s], nil, registry.ACLFiltering{}, nil
}

func (f *fakeRegistry) ServiceNames(context.Context) ([]string, error) {
	var out []string
	for k := range f.instances {
		out = append(out, k)
	}
	return out, nil
}

var (
	rpcEndpoint  = registry.Endpoint{Name: "Greeter.Call", Request: &registry.Value{Name: "Request", Type: "Request"}}
	httpEndpoint = registry.Endpoint{Name: "Greeter.Hello", Metadata: map[string]string{"method": "GET", "path": "/hello"}}
)

func instance(id, addr, status string, eps ...registry.Endpoint) registry.ServiceInstance {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return registry.ServiceInstance{ID: id, Service: "go.micro.srv.greeter", Node: "n1", Address: host, Port: p,
		Tags:   append(registry.EncodeEndpoints(eps), registry.EncodeVersion("1.0.0")),
		Checks: []registry.Check{{Node: "n1", CheckID: "service:" + id, ServiceID: id, Status: status, Type: "ttl"}}}
}

func greeterServer(t *testing.T) (*microServer, string) {
	t.Helper()
	ms := &microServer{handlers: map[string]func([]byte) (any, *MicroError){
		"Greeter.Call": func(b []byte) (any, *MicroError) {
			var req struct{ Name string }
			if err := json.Unmarshal(b, &req); err != nil || req.Name == "" {
				return nil, &MicroError{ID: "go.micro.srv.greeter", Code: 400, Detail: "name is required", Status: "Bad Request"}
			}
			return map[string]string{"msg": "Hello " + req.Name}, nil
		},
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("Hello from http\n")) })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.Handle("POST /", ms)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return ms, strings.TrimPrefix(srv.URL, "http://")
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCallGoMicroRPC(t *testing.T) {
	ms, addr := greeterServer(t)
	reg := &fakeRegistry{instances: map[string][]registry.ServiceInstance{
		"go.micro.srv.greeter": {instance("greeter-1", addr, "passing", rpcEndpoint, httpEndpoint, registry.Endpoint{Name: "Greeter.Nope"})},
	}}
	ctx := context.Background()

	res, err := Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Call", Body: []byte(`{"name":"alice"}`)},
		WithMetadata("X-Trace", "t1"))
	if err != nil {
		t.Fatal(err)
	}
	o := res.Calls[0]
	if !o.OK() || string(o.Response) != `{"msg":"Hello alice"}` || res.Protocol != ProtoRPC || o.HTTPStatus != 200 {
		t.Fatalf("outcome %+v (%s)", o, o.Response)
	}
	r := ms.requests()[0]
	for h, want := range map[string]string{"Content-Type": "application/json", "Micro-Service": "go.micro.srv.greeter",
		"Micro-Endpoint": "Greeter.Call", "Micro-Method": "Greeter.Call", "X-Trace": "t1"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("Micro-Id") == "" {
		t.Errorf("request %s %s, Micro-Id %q", r.Method, r.URL.Path, r.Header.Get("Micro-Id"))
	}

	// A handler's go-micro error: 200, empty body, JSON in Micro-Error.
	res, err = Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Call", Body: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	o = res.Calls[0]
	if o.OK() || o.MicroError == nil || o.MicroError.Code != 400 || o.Error != "400 Bad Request: name is required" || len(o.Response) != 0 {
		t.Fatalf("go-micro error: %+v %+v", o, o.MicroError)
	}
	// The router's plain-text error.
	res, _ = Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Nope"})
	if o := res.Calls[0]; o.Error != "rpc: can't find method Nope" || o.MicroError.Detail != "rpc: can't find method Nope" {
		t.Fatalf("unknown method: %+v", o)
	}
	// An endpoint with HTTP metadata is called as plain HTTP.
	res, err = Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Hello"})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Calls[0]; !o.OK() || o.Text != "Hello from http\n" || res.Protocol != ProtoHTTP || res.Method != "GET" || res.Path != "/hello" {
		t.Fatalf("http endpoint: %+v %+v", res, o)
	}
	if _, err := Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Hello", Body: []byte(`{}`)}); err == nil {
		t.Fatal("a body for a GET endpoint was accepted")
	}
	if _, err := Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Call", Body: []byte(`{`)}); !errors.As(err, new(*BadBodyError)) {
		t.Fatalf("bad JSON body: %v", err)
	}
}

func TestCallNon200IsTransportFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom\nsecond line", http.StatusInternalServerError)
	}))
	defer srv.Close()
	reg := &fakeRegistry{instances: map[string][]registry.ServiceInstance{
		"s": {instance("s-1", strings.TrimPrefix(srv.URL, "http://"), "passing")}}}
	res, err := Call(context.Background(), reg, Request{Service: "s", Endpoint: "S.X"})
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Calls[0]; o.OK() || o.Error != "500 Internal Server Error: boom second line" || o.HTTPStatus != 500 {
		t.Fatalf("outcome %+v", o)
	}
}

func TestCallAllAndInstance(t *testing.T) {
	_, addr := greeterServer(t)
	dead := closedAddr(t)
	reg := &fakeRegistry{instances: map[string][]registry.ServiceInstance{
		"go.micro.srv.greeter": {
			instance("greeter-1", addr, "passing", rpcEndpoint),
			instance("greeter-2", dead, "passing", rpcEndpoint),
			instance("greeter-3", addr, "critical", rpcEndpoint),
		}}}
	ctx := context.Background()
	req := Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Call", Body: []byte(`{"name":"bob"}`)}
	res, err := Call(ctx, reg, req, WithAll())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Calls) != 2 || res.Failed() != 1 || res.Passing != 2 || res.Instances != 3 {
		t.Fatalf("--all: %+v", res)
	}
	if o := res.Calls[1]; o.Instance != "greeter-2" || o.Error != "connection refused" {
		t.Fatalf("dead instance: %+v", o)
	}
	// --instance calls the one named, whatever its health.
	res, err = Call(ctx, reg, req, WithInstance("greeter-3"))
	if err != nil || len(res.Calls) != 1 || !res.Calls[0].OK() || res.Calls[0].Health != "critical" {
		t.Fatalf("--instance: %+v %v", res, err)
	}
	var ui *UnknownInstanceError
	if _, err := Call(ctx, reg, req, WithInstance("greeter-4")); !errors.As(err, &ui) || !strings.Contains(err.Error(), "did you mean greeter-") {
		t.Fatalf("unknown instance: %v", err)
	}
}

func TestCallTimeout(t *testing.T) {
	_, addr := greeterServer(t)
	reg := &fakeRegistry{instances: map[string][]registry.ServiceInstance{
		"s": {instance("s-1", addr, "passing", registry.Endpoint{Name: "S.Slow", Metadata: map[string]string{"method": "GET", "path": "/slow"}})}}}
	res, err := Call(context.Background(), reg, Request{Service: "s", Endpoint: "S.Slow"}, WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if o := res.Calls[0]; o.OK() || o.Error != "no answer within 100ms" {
		t.Fatalf("outcome %+v", o)
	}
}

func TestCallResolveErrors(t *testing.T) {
	_, addr := greeterServer(t)
	reg := &fakeRegistry{instances: map[string][]registry.ServiceInstance{
		"go.micro.srv.greeter": {instance("g-1", addr, "passing", rpcEndpoint, httpEndpoint)},
		"go.micro.srv.down":    {instance("d-1", addr, "critical"), instance("d-2", addr, "warning"), instance("d-3", addr, "critical")},
		"bare":                 {instance("b-1", addr, "passing")},
	}}
	ctx := context.Background()
	var us *health.UnknownServiceError
	if _, err := Call(ctx, reg, Request{Service: "greeter", Endpoint: "Greeter.Call"}); !errors.As(err, &us) || us.Suggestion != "go.micro.srv.greeter" {
		t.Fatalf("unknown service: %v", err)
	}
	var ue *UnknownEndpointError
	if _, err := Call(ctx, reg, Request{Service: "go.micro.srv.greeter", Endpoint: "Greeter.Cal"}); !errors.As(err, &ue) ||
		!strings.Contains(err.Error(), "did you mean Greeter.Call?") || !strings.Contains(ue.Hint(), "Greeter.Call, Greeter.Hello") {
		t.Fatalf("unknown endpoint: %v", err)
	}
	var np *NoPassingError
	if _, err := Call(ctx, reg, Request{Service: "go.micro.srv.down", Endpoint: "X.Y"}); !errors.As(err, &np) ||
		err.Error() != "no passing instance of go.micro.srv.down: 3 instance(s), 2 critical, 1 warning" {
		t.Fatalf("no passing: %v", err)
	}
	// A service that registers no endpoints is called anyway, the rpc way.
	res, err := Call(ctx, reg, Request{Service: "bare", Endpoint: "Greeter.Call", Body: []byte(`{"name":"x"}`)})
	if err != nil || !res.Calls[0].OK() || res.Protocol != ProtoRPC {
		t.Fatalf("no endpoints registered: %+v %v", res, err)
	}
	eps, err := Endpoints(ctx, reg, "go.micro.srv.greeter")
	if err != nil || strings.Join(eps, ",") != "Greeter.Call,Greeter.Hello" {
		t.Fatalf("Endpoints = %v %v", eps, err)
	}
}

func TestParseMicroError(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"go.micro.client","code":408,"detail":"call timeout","status":"Request Timeout"}`: "408 Request Timeout: call timeout",
		"rpc: can't find service Nope": "rpc: can't find service Nope",
		`{"detail":"multi\nline"}`:     "multi line",
		`[1]`:                          "[1]",
	} {
		if got := ParseMicroError(in).Error(); got != want {
			t.Errorf("ParseMicroError(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMicroError(f *testing.F) {
	f.Add(`{"id":"x","code":500,"detail":"d","status":"s"}`)
	f.Add("EOF")
	f.Fuzz(func(t *testing.T, s string) {
		e := ParseMicroError(s)
		if strings.ContainsAny(e.Error(), "\n\r") {
			t.Fatalf("error of %q is not one line: %q", s, e.Error())
		}
	})
}
