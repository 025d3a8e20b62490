package call

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
)

// microServer is a go-micro rpc server over go-micro's default HTTP
// transport, written from go-micro's sources (v1.10.0; v2.9.1 is the
// same on the wire), for the parts a client sees:
//
//   - transport/http_transport.go: the listener's mux handles "/" (any
//     path and method), reads the whole body, and answers through the
//     socket's Send: status 200, the REQUEST's headers copied, then the
//     message's headers set over them, the body as is;
//   - server/rpc_codec.go: getHeaders reads Micro-Id, Micro-Error,
//     Micro-Endpoint, Micro-Method and Micro-Service (or their X- forms),
//     the endpoint falling back to the method; Write sets Micro-Id,
//     Micro-Service, Micro-Method, Micro-Endpoint and Micro-Error, each
//     also as X-<name>, and Content-Type only when there is a body;
//   - server/rpc_router.go: "Service.Method" routing, "rpc: can't find
//     service X" / "rpc: can't find method Y" for unknown ones, and a
//     handler's error sent as Micro-Error with an empty body (a go-micro
//     errors.Error marshals as {"id","code","detail","status"});
//   - codec/json: the body is the request message as plain JSON.
//
// A request without a body (a GET) ends in the codec reading nothing:
// Micro-Error "EOF", as FACTS.md observed.
type microServer struct {
	handlers map[string]func(req []byte) (any, *MicroError)
	mu       sync.Mutex
	seen     []*http.Request
}

func (s *microServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.seen = append(s.seen, r.Clone(r.Context()))
	s.mu.Unlock()

	get := func(h string) string {
		if v := r.Header.Get(h); v != "" {
			return v
		}
		return r.Header.Get("X-" + h)
	}
	service, method, endpoint, id := get("Micro-Service"), get("Micro-Method"), get("Micro-Endpoint"), get("Micro-Id")
	if endpoint == "" {
		endpoint = method
	}
	var (
		out     []byte
		errText string
	)
	switch svc, m, ok := strings.Cut(endpoint, "."); {
	case len(body) == 0:
		errText = "EOF"
	case !ok || s.handlers[svc+"."] == nil && !s.hasService(svc):
		errText = "rpc: can't find service " + svc
	case s.handlers[endpoint] == nil:
		errText = "rpc: can't find method " + m
	default:
		rsp, merr := s.handlers[endpoint](body)
		if merr != nil {
			b, _ := json.Marshal(merr)
			errText = string(b)
		} else {
			out, _ = json.Marshal(rsp)
		}
	}
	hdr := w.Header()
	for k, v := range r.Header {
		hdr[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			hdr.Set(k, v)
			hdr.Set("X-"+k, v)
		}
	}
	set("Micro-Id", id)
	set("Micro-Service", service)
	set("Micro-Method", method)
	set("Micro-Endpoint", endpoint)
	set("Micro-Error", errText)
	if len(out) > 0 {
		hdr.Set("Content-Type", r.Header.Get("Content-Type"))
	}
	hdr.Del("Content-Length")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

func (s *microServer) hasService(svc string) bool {
	for k := range s.handlers {
		if strings.HasPrefix(k, svc+".") {
			return true
		}
	}
	return false
}

func (s *microServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.seen...)
}
