package cmdutil

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/client"
	"github.com/spf13/pflag"

	"github.com/microctl/microctl/pkg/registry"
)

// consulEnv lists every variable api.DefaultConfig reads that these tests
// touch; each test starts from none of them set.
var consulEnv = []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_SSL",
	"CONSUL_CACERT", "CONSUL_CLIENT_CERT", "CONSUL_CLIENT_KEY", "CONSUL_TLS_SERVER_NAME", "CONSUL_HTTP_AUTH"}

func clearConsulEnv(t *testing.T) {
	for _, k := range consulEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func parseConsulFlags(t *testing.T, args ...string) *ConsulFlags {
	t.Helper()
	var c ConsulFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &c
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConsulTokenPrecedence sends a real request and looks at the token
// that arrives, so it tests what Consul would see, not our bookkeeping.
func TestConsulTokenPrecedence(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Consul-Token")
		w.Write([]byte(`"127.0.0.1:8300"`))
	}))
	defer srv.Close()

	tests := []struct {
		name  string
		env   map[string]string
		flags func(fileFlag, fileEnv string) []string
		want  string
	}{
		{"nothing set", nil, func(_, _ string) []string { return nil }, ""},
		{"env token", map[string]string{"CONSUL_HTTP_TOKEN": "env-tok"}, func(_, _ string) []string { return nil }, "env-tok"},
		{"env token file beats env token", map[string]string{"CONSUL_HTTP_TOKEN": "env-tok", "CONSUL_HTTP_TOKEN_FILE": "@envfile"},
			func(_, _ string) []string { return nil }, "envfile-tok"},
		{"flag token beats env token and env file", map[string]string{"CONSUL_HTTP_TOKEN": "env-tok", "CONSUL_HTTP_TOKEN_FILE": "@envfile"},
			func(_, _ string) []string { return []string{"--consul-token", "flag-tok"} }, "flag-tok"},
		{"flag token file beats everything", map[string]string{"CONSUL_HTTP_TOKEN": "env-tok"},
			func(f, _ string) []string { return []string{"--consul-token", "flag-tok", "--consul-token-file", f} }, "flagfile-tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsulEnv(t)
			t.Setenv("CONSUL_HTTP_ADDR", srv.Listener.Addr().String())
			fileFlag, fileEnv := writeFile(t, "flagfile-tok"), writeFile(t, "envfile-tok")
			for k, v := range tt.env {
				if v == "@envfile" {
					v = fileEnv
				}
				t.Setenv(k, v)
			}
			c, err := registry.NewClient(parseConsulFlags(t, tt.flags(fileFlag, fileEnv)...).Config())
			if err != nil {
				t.Fatal(err)
			}
			got = "<none>"
			if _, err := c.API.Status().Leader(); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("token sent = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConsulFlagsOverrideOnlyWhatIsSet(t *testing.T) {
	clearConsulEnv(t)
	t.Setenv("CONSUL_HTTP_ADDR", "10.0.0.1:8500")
	t.Setenv("CONSUL_HTTP_TOKEN", "env-tok")
	t.Setenv("CONSUL_CACERT", "/env/ca.pem")

	// No flags: the environment stands.
	cfg := parseConsulFlags(t).Config()
	if cfg.Address != "10.0.0.1:8500" || cfg.Token != "env-tok" || cfg.TLSConfig.CAFile != "/env/ca.pem" {
		t.Errorf("env not honoured: addr=%q token=%q ca=%q", cfg.Address, cfg.Token, cfg.TLSConfig.CAFile)
	}
	// Only --consul-addr and --consul-datacenter: the token and CA from the env stay.
	cfg = parseConsulFlags(t, "--consul-addr", "127.0.0.1:9500", "--consul-datacenter", "dc2").Config()
	if cfg.Address != "127.0.0.1:9500" || cfg.Datacenter != "dc2" {
		t.Errorf("flags not applied: addr=%q dc=%q", cfg.Address, cfg.Datacenter)
	}
	if cfg.Token != "env-tok" || cfg.TLSConfig.CAFile != "/env/ca.pem" {
		t.Errorf("unset flags clobbered the env: token=%q ca=%q", cfg.Token, cfg.TLSConfig.CAFile)
	}
	// TLS flags.
	cfg = parseConsulFlags(t, "--consul-ca-file", "/f/ca.pem", "--consul-client-cert", "/f/c.pem",
		"--consul-client-key", "/f/k.pem", "--consul-tls-server-name", "consul.example").Config()
	if cfg.TLSConfig.CAFile != "/f/ca.pem" || cfg.TLSConfig.CertFile != "/f/c.pem" ||
		cfg.TLSConfig.KeyFile != "/f/k.pem" || cfg.TLSConfig.Address != "consul.example" {
		t.Errorf("TLS flags not applied: %+v", cfg.TLSConfig)
	}
}

func TestConsulUnreadableTokenFile(t *testing.T) {
	clearConsulEnv(t)
	_, err := registry.NewClient(parseConsulFlags(t, "--consul-token-file", "/nonexistent/token").Config())
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/token") {
		t.Fatalf("want an error naming the token file, got %v", err)
	}
}

func TestDockerHostPrecedence(t *testing.T) {
	tests := []struct {
		name, env string
		flags     []string
		want      string
	}{
		{"default", "", nil, client.DefaultDockerHost},
		{"DOCKER_HOST", "tcp://10.0.0.1:2375", nil, "tcp://10.0.0.1:2375"},
		{"flag beats env", "tcp://10.0.0.1:2375", []string{"--docker-host", "unix:///tmp/other.sock"}, "unix:///tmp/other.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			if tt.env != "" {
				t.Setenv("DOCKER_HOST", tt.env)
			}
			ios, _, _, _ := Test()
			f := NewFactory(ios)
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.DockerFlags.Register(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			cli, err := f.Docker()
			if err != nil {
				t.Fatal(err)
			}
			if got := cli.DaemonHost(); got != tt.want {
				t.Errorf("DaemonHost = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDockerHostWithoutScheme(t *testing.T) {
	ios, _, _, _ := Test()
	f := NewFactory(ios)
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.DockerFlags.Register(fs)
	_ = fs.Parse([]string{"--docker-host", "localhost:2375"})
	_, err := f.Docker()
	var ue *UsageError
	if err == nil || !strings.Contains(err.Error(), "needs a scheme") || !asUsage(err, &ue) {
		t.Fatalf("want a usage error about the scheme, got %v", err)
	}
}

func asUsage(err error, ue **UsageError) bool {
	u, ok := err.(*UsageError)
	*ue = u
	return ok
}
