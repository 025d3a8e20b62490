package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/microctl/microctl/pkg/registry"
)

// With -rpc (env GREETER_RPC=1) the greeter also serves one endpoint the
// way a go-micro rpc server does over its default HTTP transport (from
// go-micro's transport/http_transport.go and server/rpc_codec.go, v1.10.0
// and v2.9.1): POST / with the endpoint in Micro-Endpoint (or
// Micro-Method), the request as JSON; the answer is 200 with the request's
// headers echoed, the Micro-* headers (each also as X-Micro-*), and the
// response JSON, or an empty body and the error in Micro-Error: a go-micro
// error as JSON {id, code, detail, status} from the handler, plain text
// from the router. It is registered without HTTP metadata, so clients
// (microctl call) use the rpc way for it.
//
//	Greeter.Call {"name": "alice"} -> {"msg": "Hello alice from <instance id>"}

// rpcEndpoint is Greeter.Call as go-micro's handler reflection would
// register it.
var rpcEndpoint = registry.Endpoint{Name: "Greeter.Call",
	Request:  &registry.Value{Name: "Request", Type: "Request", Values: []*registry.Value{{Name: "name", Type: "string"}}},
	Response: &registry.Value{Name: "Response", Type: "Response", Values: []*registry.Value{{Name: "msg", Type: "string"}}},
	Metadata: map[string]string{}}

// goMicroError is go-micro's errors.Error on the wire.
type goMicroError struct {
	ID     string `json:"id"`
	Code   int32  `json:"code"`
	Detail string `json:"detail"`
	Status string `json:"status"`
}

func rpcHandler(service, id string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		get := func(h string) string {
			if v := r.Header.Get(h); v != "" {
				return v
			}
			return r.Header.Get("X-" + h)
		}
		method, endpoint := get("Micro-Method"), get("Micro-Endpoint")
		if endpoint == "" {
			endpoint = method
		}
		var out []byte
		var errText string
		svc, m, _ := strings.Cut(endpoint, ".")
		switch {
		case err != nil:
			errText = err.Error()
		case len(body) == 0:
			errText = "EOF" // what go-micro's json codec says about no body
		case svc != "Greeter":
			errText = "rpc: can't find service " + svc
		case m != "Call":
			errText = "rpc: can't find method " + m
		default:
			var req struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(body, &req) != nil || req.Name == "" {
				b, _ := json.Marshal(goMicroError{ID: service, Code: 400, Detail: "name is required", Status: "Bad Request"})
				errText = string(b)
			} else {
				out, _ = json.Marshal(map[string]string{"msg": "Hello " + req.Name + " from " + id})
			}
		}
		hdr := w.Header()
		for k, v := range r.Header {
			if k != "Content-Length" {
				hdr[k] = v
			}
		}
		set := func(k, v string) {
			if v != "" {
				hdr.Set(k, v)
				hdr.Set("X-"+k, v)
			}
		}
		set("Micro-Id", get("Micro-Id"))
		set("Micro-Service", get("Micro-Service"))
		set("Micro-Method", method)
		set("Micro-Endpoint", endpoint)
		set("Micro-Error", errText)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out)
	}
}
