// Package call calls one endpoint of a go-micro service found in Consul,
// the way go-micro's own client does over its default HTTP transport, so
// an operator can smoke-test an endpoint after a deploy without the micro
// CLI.
//
// The go-micro wire format (transport/http_transport.go and
// server/rpc_codec.go in go-micro v1.10.0, the same in v2.9.1): the client
// sends POST / with Content-Type application/json, the request JSON as
// the body (codec/json) and the headers Micro-Service, Micro-Endpoint,
// Micro-Method and Micro-Id; go-micro metadata travel as further headers.
// The server answers 200 with the response JSON, or 200 with an empty body
// and the error in Micro-Error (and X-Micro-Error): a go-micro error as
// JSON {id, code, detail, status} from a handler, plain text from the
// router ("rpc: can't find method Nope"). A status other than 200 is a
// transport failure; go-micro's client reports it as "<status>: <body>".
//
// Endpoints registered with HTTP metadata ("method" and "path" in the e-
// tag, as microctl's example greeter and go-micro's api handlers do) are
// served over plain HTTP, and are called that way.
package call

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/microctl/microctl/internal/neterr"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

// Registry is the Consul access Call needs; *registry.Client is one.
type Registry interface {
	ServiceInstances(ctx context.Context, service string) ([]registry.ServiceInstance, []registry.Node, registry.ACLFiltering, error)
	ServiceNames(ctx context.Context) ([]string, error)
}

// DefaultTimeout bounds one call (connect, request and response).
const DefaultTimeout = 10 * time.Second

// maxResponse bounds what is read of one answer.
const maxResponse = 16 << 20

// Options configure Call.
type Options struct {
	// Timeout bounds each call to one instance (default DefaultTimeout).
	Timeout time.Duration
	// Instance calls this instance ID only, whatever its health.
	Instance string
	// All calls every passing instance instead of one.
	All bool
	// Metadata is sent as headers, as go-micro sends its metadata.
	Metadata map[string]string
	// Client is the HTTP client (default: a fresh one per Call, no
	// keep-alive, no proxy).
	Client *http.Client
}

// Option sets one Options field.
type Option func(*Options)

// WithTimeout sets the per-instance timeout.
func WithTimeout(d time.Duration) Option { return func(o *Options) { o.Timeout = d } }

// WithInstance calls one instance by its ID.
func WithInstance(id string) Option { return func(o *Options) { o.Instance = id } }

// WithAll calls every passing instance.
func WithAll() Option { return func(o *Options) { o.All = true } }

// WithMetadata adds a metadata header.
func WithMetadata(k, v string) Option {
	return func(o *Options) {
		if o.Metadata == nil {
			o.Metadata = map[string]string{}
		}
		o.Metadata[k] = v
	}
}

// WithHTTPClient replaces the HTTP client (tests).
func WithHTTPClient(c *http.Client) Option { return func(o *Options) { o.Client = c } }

// Request is what to call.
type Request struct {
	Service  string
	Endpoint string
	// Body is the request JSON; empty means {} for go-micro rpc and no
	// body for plain HTTP.
	Body []byte
}

// Protocol names how an endpoint is called.
const (
	ProtoRPC  = "go-micro rpc" // POST / with Micro-* headers
	ProtoHTTP = "http"         // the endpoint's own method and path
)

// MicroError is a go-micro error (errors.Error in go-micro), as it travels
// in the Micro-Error header.
type MicroError struct {
	ID     string `json:"id"`
	Code   int32  `json:"code"`
	Detail string `json:"detail"`
	Status string `json:"status"`
}

func (e *MicroError) Error() string {
	var parts []string
	if e.Code != 0 {
		parts = append(parts, strconv.Itoa(int(e.Code)))
	}
	if e.Status != "" {
		parts = append(parts, e.Status)
	}
	head := oneLine(strings.Join(parts, " "))
	detail := oneLine(e.Detail)
	switch {
	case head == "":
		return detail
	case detail == "":
		return head
	}
	return head + ": " + detail
}

// Outcome is one call to one instance. The JSON field names are part of
// `microctl call -o json`.
type Outcome struct {
	Instance string `json:"instance"`
	Address  string `json:"address"`
	Health   string `json:"health"`
	// HTTPStatus is the status line's code, 0 when none arrived.
	HTTPStatus int             `json:"http_status"`
	Millis     float64         `json:"ms"`
	Response   json.RawMessage `json:"response,omitempty"` // a JSON answer
	Text       string          `json:"text,omitempty"`     // an answer that is not JSON
	// MicroError is the error a go-micro server answered with; Error says
	// in one line why the call failed (transport, status, MicroError).
	MicroError *MicroError `json:"micro_error,omitempty"`
	Error      string      `json:"error,omitempty"`

	body []byte
}

// OK reports whether the call succeeded.
func (o *Outcome) OK() bool { return o.Error == "" }

// Body is the raw answer.
func (o *Outcome) Body() []byte { return o.body }

// Result is what Call did.
type Result struct {
	Service  string    `json:"service"`
	Endpoint string    `json:"endpoint"`
	Protocol string    `json:"protocol"`
	Method   string    `json:"method,omitempty"` // plain HTTP only
	Path     string    `json:"path,omitempty"`
	Calls    []Outcome `json:"calls"`
	// Passing and Instances count the service's instances.
	Passing   int `json:"passing"`
	Instances int `json:"instances"`
}

// Failed counts the calls that failed.
func (r *Result) Failed() int {
	n := 0
	for i := range r.Calls {
		if !r.Calls[i].OK() {
			n++
		}
	}
	return n
}

// Call resolves req.Service in Consul and calls req.Endpoint on one passing
// instance (or, WithAll, on every passing one; WithInstance, on that one).
// Errors before any call (unknown service or endpoint, no passing
// instance) are returned; a failed call is an Outcome with Error set.
func Call(ctx context.Context, reg Registry, req Request, opts ...Option) (*Result, error) {
	o := Options{Timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Timeout <= 0 {
		return nil, errors.New("the timeout must be positive")
	}
	if len(req.Body) > 0 && !json.Valid(req.Body) {
		return nil, &BadBodyError{}
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true,
			DialContext: (&net.Dialer{Timeout: o.Timeout}).DialContext}}
	}
	raw, nodes, filtered, err := reg.ServiceInstances(ctx, req.Service)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		names, err := reg.ServiceNames(ctx)
		if err != nil {
			return nil, err
		}
		return nil, &health.UnknownServiceError{Name: req.Service, Suggestion: health.Suggest(req.Service, names), Filtered: filtered.Any()}
	}
	instances := health.Build(&registry.Catalog{Nodes: nodes, Instances: raw}, health.Options{})
	res := &Result{Service: req.Service, Endpoint: req.Endpoint, Protocol: ProtoRPC, Instances: len(instances)}
	var passing []health.Instance
	for _, in := range instances {
		if in.Status == registry.StatusPassing {
			passing = append(passing, in)
		}
	}
	res.Passing = len(passing)

	targets := passing
	switch {
	case o.Instance != "":
		i := slices.IndexFunc(instances, func(in health.Instance) bool { return in.ID == o.Instance })
		if i < 0 {
			ids := make([]string, len(instances))
			for j, in := range instances {
				ids[j] = in.ID
			}
			return nil, &UnknownInstanceError{Service: req.Service, ID: o.Instance, Suggestion: health.Suggest(o.Instance, ids)}
		}
		targets = instances[i : i+1]
	case len(passing) == 0:
		return nil, noPassing(req.Service, instances)
	case !o.All:
		// go-micro's default selector picks at random; the first passing
		// instance (sorted by node and ID) keeps runs reproducible.
		targets = passing[:1]
	}

	ep, err := findEndpoint(req, instances)
	if err != nil {
		return nil, err
	}
	if ep != nil && ep.Metadata["method"] != "" && ep.Metadata["path"] != "" {
		res.Protocol, res.Method, res.Path = ProtoHTTP, strings.ToUpper(ep.Metadata["method"]), ep.Metadata["path"]
		if len(req.Body) > 0 && (res.Method == http.MethodGet || res.Method == http.MethodHead) {
			return nil, fmt.Errorf("%s is served as HTTP %s %s, which takes no request body", req.Endpoint, res.Method, res.Path)
		}
	}

	res.Calls = make([]Outcome, len(targets))
	var wg sync.WaitGroup
	for i, in := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Calls[i] = callOne(ctx, o, req, res, in)
		}()
	}
	wg.Wait()
	return res, nil
}

// findEndpoint looks the endpoint up in the instances' registrations. A
// service that registers no endpoints at all is called anyway (go-micro's
// client does not need them); one that registers others gets "did you
// mean".
func findEndpoint(req Request, instances []health.Instance) (*registry.Endpoint, error) {
	var names []string
	for _, in := range instances {
		for i := range in.Decoded.Endpoints {
			ep := &in.Decoded.Endpoints[i]
			if ep.Name == req.Endpoint {
				return ep, nil
			}
			if !slices.Contains(names, ep.Name) {
				names = append(names, ep.Name)
			}
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	return nil, &UnknownEndpointError{Service: req.Service, Endpoint: req.Endpoint, Suggestion: health.Suggest(req.Endpoint, names), Known: names}
}

// Endpoints lists the endpoint names the service's instances register, for
// shell completion.
func Endpoints(ctx context.Context, reg Registry, service string) ([]string, error) {
	raw, nodes, _, err := reg.ServiceInstances(ctx, service)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, in := range health.Build(&registry.Catalog{Nodes: nodes, Instances: raw}, health.Options{}) {
		for _, ep := range in.Decoded.Endpoints {
			if !slices.Contains(names, ep.Name) {
				names = append(names, ep.Name)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

var seq atomic.Uint64

func callOne(ctx context.Context, o Options, req Request, res *Result, in health.Instance) Outcome {
	addr := net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
	out := Outcome{Instance: in.ID, Address: addr, Health: in.Status}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	method, path, body := http.MethodPost, "/", req.Body
	if res.Protocol == ProtoHTTP {
		method, path = res.Method, res.Path
	} else if len(body) == 0 {
		body = []byte("{}")
	}
	hreq, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		out.Error = err.Error()
		return out
	}
	for k, v := range o.Metadata {
		hreq.Header.Set(k, v)
	}
	if len(body) > 0 {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if res.Protocol == ProtoRPC {
		hreq.Header.Set("Micro-Service", req.Service)
		hreq.Header.Set("Micro-Endpoint", req.Endpoint)
		hreq.Header.Set("Micro-Method", req.Endpoint)
		hreq.Header.Set("Micro-Id", strconv.FormatUint(seq.Add(1), 10))
	}
	start := time.Now()
	resp, err := o.Client.Do(hreq)
	if err != nil {
		out.Millis = ms(time.Since(start))
		out.Error = transportError(ctx, err, o.Timeout)
		return out
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	out.Millis = ms(time.Since(start))
	out.HTTPStatus = resp.StatusCode
	if err != nil {
		out.Error = "reading the answer: " + transportError(ctx, err, o.Timeout)
		return out
	}
	if len(b) > maxResponse {
		out.Error = fmt.Sprintf("the answer is larger than %d MB", maxResponse>>20)
		return out
	}
	out.body = b
	if json.Valid(b) {
		out.Response = json.RawMessage(b)
	} else if len(b) > 0 {
		out.Text = string(b)
	}
	switch {
	case res.Protocol == ProtoRPC && resp.StatusCode != http.StatusOK:
		// go-micro's client: any status but 200 is "<status>: <body>".
		out.Error = oneLine(resp.Status + ": " + string(b))
	case res.Protocol == ProtoRPC:
		if me := resp.Header.Get("Micro-Error"); me != "" {
			out.MicroError = ParseMicroError(me)
			out.Error = out.MicroError.Error()
		}
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		out.Error = oneLine(resp.Status + ": " + firstLine(string(b)))
	}
	return out
}

// ParseMicroError reads a Micro-Error header as go-micro's errors.Parse
// does: a JSON error when it is one, else the text as the detail.
func ParseMicroError(s string) *MicroError {
	var e MicroError
	if err := json.Unmarshal([]byte(s), &e); err == nil && (e.Detail != "" || e.Code != 0 || e.ID != "") {
		return &e
	}
	return &MicroError{Detail: s}
}

func transportError(ctx context.Context, err error, timeout time.Duration) string {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return neterr.Reason(err)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// noPassing says how many instances there are and in what state.
func noPassing(service string, instances []health.Instance) error {
	counts := map[string]int{}
	for _, in := range instances {
		counts[in.Status]++
	}
	return &NoPassingError{Service: service, Instances: len(instances), ByStatus: counts}
}
