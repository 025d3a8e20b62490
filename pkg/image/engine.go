package image

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
)

// DefaultEngineURL maps a swarm node to its engine when nothing else is
// said: ssh to the node's address, as `docker -H ssh://` does.
const DefaultEngineURL = "ssh://{addr}"

var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// EngineURL expands tmpl for one node: {addr} is the node's address
// (bracketed when IPv6, so it fits in a URL), {hostname} its hostname. Any
// other {...} is an error, so that a typo does not become a host name.
func EngineURL(tmpl, addr, hostname string) (string, error) {
	if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
		addr = "[" + addr + "]"
	}
	var bad []string
	out := placeholder.ReplaceAllStringFunc(tmpl, func(p string) string {
		switch p {
		case "{addr}":
			return addr
		case "{hostname}":
			return hostname
		}
		bad = append(bad, p)
		return p
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("--engine-url %q: unknown placeholder %s (known: {addr}, {hostname})", tmpl, strings.Join(bad, " "))
	}
	if strings.ContainsAny(out, "{}") {
		return "", fmt.Errorf("--engine-url %q: unbalanced braces", tmpl)
	}
	if _, err := ParseEngineURL(out); err != nil {
		return "", err
	}
	return out, nil
}

// ParseEngineURL checks an engine address: unix://, tcp:// or
// ssh://[user@]host[:port].
func ParseEngineURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("engine %q: %w", s, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			return nil, fmt.Errorf("engine %q: no socket path", s)
		}
	case "tcp":
		if u.Host == "" {
			return nil, fmt.Errorf("engine %q: no host", s)
		}
	case "ssh":
		if u.Hostname() == "" {
			return nil, fmt.Errorf("engine %q: no host", s)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("engine %q: an ssh engine takes no path", s)
		}
		if _, ok := u.User.Password(); ok {
			return nil, fmt.Errorf("engine %q: no password in the URL; use an ssh key or agent", s)
		}
	default:
		return nil, fmt.Errorf("engine %q: want unix://, tcp:// or ssh://user@host", s)
	}
	return u, nil
}

// ClientOptions are the Docker client options that reach the engine at s.
// An ssh:// engine is reached the way docker/cli's connhelper does it: the
// local ssh runs `docker system dial-stdio` on the host, and the client
// speaks HTTP over that process's stdin and stdout.
func ClientOptions(s string) ([]client.Opt, error) {
	u, err := ParseEngineURL(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ssh" {
		return []client.Opt{client.WithHost(s), client.WithAPIVersionNegotiation()}, nil
	}
	args := SSHArgs(u)
	return []client.Opt{
		// The host is never dialled: the dialer below replaces it. The
		// name is what docker/cli uses too.
		client.WithHost("http://docker.example.com"),
		client.WithDialContext(func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialCommand(ctx, "ssh", args...)
		}),
		client.WithAPIVersionNegotiation(),
	}, nil
}

// SSHArgs are the ssh arguments for u: batch mode (never a password
// prompt in the middle of a push), a connect timeout, the user and port
// when given, then `--` so that a host cannot be taken for an option.
func SSHArgs(u *url.URL) []string {
	args := []string{"-o", "BatchMode=yes", "-o", "ConnectTimeout=30"}
	if u.User != nil && u.User.Username() != "" {
		args = append(args, "-l", u.User.Username())
	}
	if p := u.Port(); p != "" {
		args = append(args, "-p", p)
	}
	return append(args, "--", u.Hostname(), "docker", "system", "dial-stdio")
}

// dialCommand runs name args and makes its stdin and stdout a net.Conn.
// The process lives as long as the connection, not as long as ctx: ctx
// only bounds the start.
func dialCommand(ctx context.Context, name string, args ...string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 4096}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &commandConn{cmd: cmd, stdin: stdin, stdout: stdout, stderr: stderr}, nil
}

type commandConn struct {
	cmd       *exec.Cmd
	stdin     io.WriteCloser
	stdout    io.ReadCloser
	stderr    *tailBuffer
	closeOnce sync.Once
}

func (c *commandConn) Read(p []byte) (int, error) {
	n, err := c.stdout.Read(p)
	if err == io.EOF && n == 0 {
		if s := c.stderr.String(); s != "" {
			return 0, fmt.Errorf("%s: %s", c.cmd.Path, strings.TrimSpace(s))
		}
	}
	return n, err
}

func (c *commandConn) Write(p []byte) (int, error) { return c.stdin.Write(p) }

func (c *commandConn) Close() error {
	c.closeOnce.Do(func() {
		_ = c.stdin.Close()
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	return nil
}

// CloseWrite lets the HTTP client half-close, as over a TCP connection.
func (c *commandConn) CloseWrite() error { return c.stdin.Close() }

func (c *commandConn) LocalAddr() net.Addr  { return dummyAddr{} }
func (c *commandConn) RemoteAddr() net.Addr { return dummyAddr{} }

// Deadlines cannot be set on pipes to a process; the client's context
// (and the push's stall watchdog) bound each request instead.
func (c *commandConn) SetDeadline(time.Time) error      { return nil }
func (c *commandConn) SetReadDeadline(time.Time) error  { return nil }
func (c *commandConn) SetWriteDeadline(time.Time) error { return nil }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "command" }
func (dummyAddr) String() string  { return "command" }

// tailBuffer keeps the last max bytes written: ssh's complaint, for the
// error message.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// NodeEngine is one swarm node mapped to its engine.
type NodeEngine struct {
	NodeID   string
	Hostname string
	Addr     string
	URL      string
	Self     bool // the node of the source engine: it has the images already
	State    string
}

// Swarm is what NodeEngines needs of a manager.
type Swarm interface {
	NodeList(ctx context.Context, opts swarm.NodeListOptions) ([]swarm.Node, error)
	Info(ctx context.Context) (system.Info, error)
}

// NodeEngines lists the swarm's nodes (through the manager api) and maps
// each to an engine URL with tmpl. The node of api itself is marked Self.
func NodeEngines(ctx context.Context, api Swarm, tmpl string) ([]NodeEngine, error) {
	if tmpl == "" {
		tmpl = DefaultEngineURL
	}
	info, err := api.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateActive || !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("--all-nodes needs the engine at DOCKER_HOST to be a swarm manager (it is %q, manager %t)",
			info.Swarm.LocalNodeState, info.Swarm.ControlAvailable)
	}
	nodes, err := api.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the swarm's nodes: %w", err)
	}
	var out []NodeEngine
	for _, n := range nodes {
		addr := n.Status.Addr
		if (addr == "" || addr == "0.0.0.0") && n.ManagerStatus != nil {
			if h, _, err := net.SplitHostPort(n.ManagerStatus.Addr); err == nil {
				addr = h
			}
		}
		ne := NodeEngine{NodeID: n.ID, Hostname: n.Description.Hostname, Addr: addr,
			Self: n.ID == info.Swarm.NodeID, State: string(n.Status.State)}
		if !ne.Self {
			u, err := EngineURL(tmpl, addr, ne.Hostname)
			if err != nil {
				return nil, err
			}
			ne.URL = u
		}
		out = append(out, ne)
	}
	return out, nil
}
