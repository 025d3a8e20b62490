package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Header is one request header field, in the order given.
type Header struct {
	Name, Value string
}

// ParseHeader parses "Name: value", the form of curl's and wrk's -H.
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
		return Header{}, fmt.Errorf("header %q is not of the form \"Name: value\"", s)
	}
	value = strings.TrimSpace(value)
	if strings.ContainsAny(value, "\r\n") {
		return Header{}, fmt.Errorf("header %q contains a line break", name)
	}
	return Header{Name: name, Value: value}, nil
}

// Credentials never reach a result, a table or a report. A header or a
// URL query parameter is taken as one when its name, lower-cased, is one
// of secretNames or contains one of secretParts: Authorization and Cookie,
// but also X-Api-Key, X-Auth-Token, access_token, client_secret, sig...
var (
	secretNames = map[string]bool{
		"authorization": true, "proxy-authorization": true, "cookie": true, "set-cookie": true,
		"sig": true, "signature": true, "code": true, "jwt": true, "pass": true, "pwd": true,
	}
	secretParts = []string{"auth", "token", "secret", "passw", "apikey", "api-key", "api_key",
		"session", "credential", "private", "signature", "x-amz-security", "csrf", "xsrf", "key"}
)

// redacted is what replaces a credential.
const redacted = "<redacted>"

// IsSecretName says whether a header or query parameter of this name
// carries a credential.
func IsSecretName(name string) bool {
	n := strings.ToLower(strings.TrimSpace(name))
	if secretNames[n] {
		return true
	}
	for _, p := range secretParts {
		if strings.Contains(n, p) {
			return true
		}
	}
	return false
}

// Redacted returns the header as it may be shown: credentials hidden.
func (h Header) Redacted() string {
	if IsSecretName(h.Name) {
		return h.Name + ": " + redacted
	}
	return h.Name + ": " + h.Value
}

// RedactURL hides the credentials a URL carries: a password in its user
// information and the values of query parameters named like a credential
// (see IsSecretName). Anything it cannot parse is returned with its whole
// query and user information hidden.
func RedactURL(raw string) string {
	if raw == "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		base, _, _ := strings.Cut(raw, "?")
		if i := strings.Index(base, "@"); i >= 0 {
			if j := strings.Index(base, "://"); j >= 0 && j < i {
				base = base[:j+3] + redacted + base[i:]
			}
		}
		if strings.Contains(raw, "?") {
			return base + "?" + redacted
		}
		return base
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, kv := range parts {
			k, _, hasValue := strings.Cut(kv, "=")
			name, err := url.QueryUnescape(k)
			if err != nil {
				name = k
			}
			if hasValue && IsSecretName(name) {
				parts[i] = k + "=REDACTED"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// Target is where a URL points, split into what the request needs.
type Target struct {
	URL      *url.URL
	TLS      bool   // https
	HostPort string // host:port to connect to
	Host     string // the Host header
	Path     string // path and query, as sent on the request line
}

// ParseURL parses a benchmark URL: http[s]://host[:port][/path][?query].
// A URL without a scheme is taken as http://.
func ParseURL(raw string) (*Target, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad URL %q: %v", RedactURL(raw), stripURLErr(err))
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return nil, fmt.Errorf("bad URL %q: scheme %q is not http or https", RedactURL(raw), u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("bad URL %q: no host", RedactURL(raw))
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return nil, fmt.Errorf("bad URL %q: port %q", RedactURL(raw), port)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	return &Target{URL: u, TLS: u.Scheme == "https", HostPort: net.JoinHostPort(host, port), Host: u.Host, Path: path}, nil
}

func stripURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// buildRequest returns the bytes of one request. Content-Length is always
// computed from the body; Host defaults to host.
func buildRequest(method, host, path string, headers []Header, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(path)
	b.WriteString(" HTTP/1.1\r\n")
	has := func(name string) bool {
		for _, h := range headers {
			if strings.EqualFold(h.Name, name) {
				return true
			}
		}
		return false
	}
	if !has("Host") {
		b.WriteString("Host: " + host + "\r\n")
	}
	if !has("User-Agent") {
		b.WriteString("User-Agent: microctl-bench\r\n")
	}
	for _, h := range headers {
		b.WriteString(h.Name + ": " + h.Value + "\r\n")
	}
	if len(body) > 0 || methodHasBody(method) {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

func methodHasBody(m string) bool { return m == "POST" || m == "PUT" || m == "PATCH" }

// validMethod: a token (RFC 9110 5.6.2), in practice upper-case letters.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
