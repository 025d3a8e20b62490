package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/boundhttp"
	"github.com/microctl/microctl/internal/neterr"
)

// UnreachableError means Consul did not answer at Addr: nothing listens
// there, the name does not resolve, TLS failed, or the request timed out.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach Consul at %s: %s", e.Addr, neterr.Reason(e.Err))
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *UnreachableError) Hint() string { return "set --consul-addr or CONSUL_HTTP_ADDR" }

// PermissionError means Consul answered but refused: ACLs are on and the
// token is unknown or lacks a permission. Detail is Consul's own words.
type PermissionError struct {
	Addr   string
	Detail string
	Err    error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("Consul at %s refused the request: %s", e.Addr, e.Detail)
}
func (e *PermissionError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *PermissionError) Hint() string {
	return "set --consul-token or CONSUL_HTTP_TOKEN to a token with the needed policy"
}

// Classify turns an error from the Consul API client into an
// UnreachableError or a PermissionError when it is one, and otherwise
// returns it unchanged. Context cancellation is passed through untouched so
// that Ctrl-C is reported as an interruption, not as an unreachable agent.
func Classify(addr string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var ue *UnreachableError
	var pe *PermissionError
	if errors.As(err, &ue) || errors.As(err, &pe) {
		return err
	}
	// The transport's own verdicts name the address and say it all; the
	// url.Error around them would only repeat the URL.
	var te *boundhttp.TimeoutError
	if errors.As(err, &te) {
		return te
	}
	var we *boundhttp.WrongPeerError
	if errors.As(err, &we) {
		return we
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) || strings.Contains(err.Error(), "invalid character") {
		// An answer that is not JSON where Consul always sends JSON.
		return &boundhttp.WrongPeerError{Peer: "a Consul agent", Addr: addr, Saw: "its answer is not JSON"}
	}
	var se api.StatusError
	if errors.As(err, &se) {
		if se.Code == 403 || (se.Code == 401 && !isACLDisabled(err)) {
			if !consulRefusal(se.Body) {
				return notConsulStatus(addr, se.Code, se.Body)
			}
			return &PermissionError{Addr: addr, Detail: aclDetail(strings.TrimSpace(se.Body)), Err: err}
		}
		return err
	}
	// Some code paths of the api package format status codes into plain
	// strings rather than returning StatusError.
	msg := err.Error()
	for _, code := range []int{401, 403} {
		if strings.Contains(msg, fmt.Sprintf("Unexpected response code: %d", code)) && !isACLDisabled(err) && !consulRefusal(msg) {
			return notConsulStatus(addr, code, trimStatus(msg))
		}
	}
	if strings.Contains(msg, "Unexpected response code: 403") || strings.Contains(msg, "Permission denied") || strings.Contains(msg, "ACL not found") {
		return &PermissionError{Addr: addr, Detail: aclDetail(trimStatus(msg)), Err: err}
	}
	var ne net.Error
	var ope *net.OpError
	var ure *url.Error
	if errors.As(err, &ope) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ure) && ure.Err != nil) {
		return &UnreachableError{Addr: addr, Err: err}
	}
	return err
}

// consulRefusal reports whether a 401/403 body is Consul's own words.
// Consul refuses with "Permission denied…", "ACL not found" or "ACL
// support disabled"; anything else refusing (an API gateway answering 401 to
// every request without a bearer token) is not Consul, and taking it for
// a Consul refusal made doctor report "Consul answers" for it.
func consulRefusal(body string) bool {
	return strings.Contains(body, "Permission denied") || strings.Contains(body, "ACL not found") ||
		strings.Contains(body, "ACL support disabled")
}

func notConsulStatus(addr string, code int, body string) error {
	body = strings.TrimSpace(body)
	if len(body) > 60 {
		body = body[:60] + "…"
	}
	saw := fmt.Sprintf("it answered %d with %q, which is not how Consul refuses a request", code, body)
	return &boundhttp.WrongPeerError{Peer: "a Consul agent", Addr: addr, Saw: saw}
}

// aclDetail rewords Consul's terse "ACL not found", which is about the
// token, not about an ACL rule.
func aclDetail(body string) string {
	if body == "ACL not found" {
		return "the ACL token is not known to this datacenter (ACL not found)"
	}
	return body
}

func isACLDisabled(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ACL support disabled")
}

func trimStatus(msg string) string {
	if i := strings.Index(msg, "("); i >= 0 && strings.HasSuffix(msg, ")") {
		return msg[i+1 : len(msg)-1]
	}
	return msg
}
