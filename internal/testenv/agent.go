package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// Agent is a private Consul dev agent started for one test.
type Agent struct {
	Addr string // 127.0.0.1:port of the HTTP API
	// Token is the initial management token when ACLs are on, "" otherwise.
	Token string

	bin, node string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
}

// Client returns a client for the agent presenting token ("" for none).
func (a *Agent) Client(t testing.TB, token string) *registry.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	cfg.Token = token
	cfg.TokenFile = ""
	c, err := registry.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type agentOptions struct {
	aclDefaultPolicy string
	extraHCL         []string
}

// AgentOption configures StartAgent.
type AgentOption func(*agentOptions)

// WithACL turns ACLs on with the given default policy ("deny" or "allow");
// the agent's Token is then its initial management token.
func WithACL(defaultPolicy string) AgentOption {
	return func(o *agentOptions) { o.aclDefaultPolicy = defaultPolicy }
}

// WithHCL adds a configuration fragment.
func WithHCL(hcl string) AgentOption {
	return func(o *agentOptions) { o.extraHCL = append(o.extraHCL, hcl) }
}

// ConsulBinary returns the path of the consul binary: MICROCTL_CONSUL_BIN,
// else `consul` on PATH.
func ConsulBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MICROCTL_CONSUL_BIN"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("consul")
	if err != nil {
		Missing(t, "no consul binary (MICROCTL_CONSUL_BIN unset and consul not on PATH)")
	}
	return p
}

// StartAgent starts a private Consul dev agent on free loopback ports and
// stops it when the test ends. It takes about two seconds.
func StartAgent(t testing.TB, opts ...AgentOption) *Agent {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: starts a Consul agent (-short)")
	}
	bin := ConsulBinary(t)
	var o agentOptions
	for _, opt := range opts {
		opt(&o)
	}
	// Three distinct ports: freePort closes its probe, so two calls can
	// return the same one (seen in CI: "RPC Advertise address ... already
	// configured for HTTP").
	http, server, serf := freePort(t), freePort(t), freePort(t)
	for tries := 0; (server == http || serf == http || serf == server) && tries < 20; tries++ {
		server, serf = freePort(t), freePort(t)
	}
	a := &Agent{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(http))}
	node := "microctl-test-" + strconv.Itoa(http)
	args := []string{"agent", "-dev", "-node", node,
		"-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(http), "-server-port", strconv.Itoa(server), "-serf-lan-port", strconv.Itoa(serf),
		"-serf-wan-port", "-1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-log-level", "warn"}
	if o.aclDefaultPolicy != "" {
		a.Token = "root-" + strconv.Itoa(http)
		args = append(args, "-hcl", fmt.Sprintf(`acl { enabled = true default_policy = %q enable_token_persistence = false tokens { initial_management = %q } }`,
			o.aclDefaultPolicy, a.Token))
	}
	for _, h := range o.extraHCL {
		args = append(args, "-hcl", h)
	}
	a.bin, a.args, a.node = bin, args, node
	a.start(t)
	t.Cleanup(a.stop)
	return a
}

// start runs the agent and waits until it has a leader (and, with ACLs, a
// usable management token and its own node in the catalog).
func (a *Agent) start(t testing.TB) {
	t.Helper()
	var logBuf bytes.Buffer
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start consul: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	a.cmd, a.done = cmd, done
	c := a.Client(t, a.Token)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		leader, err := c.Leader(ctx)
		cancel()
		if err == nil && leader != "" {
			// With ACLs the management token is usable only once the
			// ACL system has bootstrapped; and a session cannot be created
			// before the agent's own node is in the catalog ("Missing node
			// registration"). Wait for both.
			if (a.Token == "" || aclReady(c)) && nodeRegistered(c, a.node) {
				return
			}
		}
		select {
		case <-done:
			t.Fatalf("consul exited: %s", lastLines(logBuf.String(), 10))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("consul at %s: no leader after 30s: %s", a.Addr, lastLines(logBuf.String(), 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop interrupts the agent and waits for it to exit.
func (a *Agent) stop() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
}

// Restart stops the agent and starts it again on the same ports. A dev
// agent keeps its state in memory, so it comes back empty, its index
// counting from scratch: what a watcher sees when a real agent loses its
// state. between runs while it is down (nil for nothing).
func (a *Agent) Restart(t testing.TB, between func()) {
	t.Helper()
	a.stop()
	if between != nil {
		between()
	}
	a.start(t)
}

func nodeRegistered(c *registry.Client, node string) bool {
	n, _, err := c.API.Catalog().Node(node, nil)
	return err == nil && n != nil && n.Node != nil
}

func aclReady(c *registry.Client) bool {
	_, _, err := c.API.ACL().TokenReadSelf(nil)
	return err == nil
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1 (Serf
// listens on both).
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// RepoRoot returns the module root, for tests that build binaries or read
// repository files.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
