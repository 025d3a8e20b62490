package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/microctl/microctl/pkg/call"
	"github.com/microctl/microctl/pkg/registry"
)

type oneService struct {
	call.Registry
	in registry.ServiceInstance
}

func (o oneService) ServiceInstances(context.Context, string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error) {
	return []registry.ServiceInstance{o.in}, nil, registry.ACLFiltering{}, nil
}

// TestRPCEndpoint calls the greeter's rpc endpoint with microctl's client
// (pkg/call), as `microctl call` does.
func TestRPCEndpoint(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", rpcHandler("go.micro.srv.greeter", "greeter-1"))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p, _ := strconv.Atoi(port)
	reg := oneService{in: registry.ServiceInstance{ID: "greeter-1", Service: "go.micro.srv.greeter", Address: host, Port: p,
		Tags:   registry.EncodeEndpoints([]registry.Endpoint{rpcEndpoint, {Name: "Greeter.Nope"}}),
		Checks: []registry.Check{{ServiceID: "greeter-1", CheckID: "service:greeter-1", Status: "passing"}}}}
	for _, tc := range []struct {
		endpoint, body, response, err string
	}{
		{"Greeter.Call", `{"name":"alice"}`, `{"msg":"Hello alice from greeter-1"}`, ""},
		{"Greeter.Call", `{}`, "", "400 Bad Request: name is required"},
		{"Greeter.Nope", `{}`, "", "rpc: can't find method Nope"},
	} {
		res, err := call.Call(context.Background(), reg, call.Request{Service: "go.micro.srv.greeter", Endpoint: tc.endpoint, Body: []byte(tc.body)})
		if err != nil {
			t.Fatal(err)
		}
		o := res.Calls[0]
		if string(o.Response) != tc.response || o.Error != tc.err || res.Protocol != call.ProtoRPC {
			t.Errorf("%s %s: response %s, error %q", tc.endpoint, tc.body, o.Response, o.Error)
		}
	}
}
