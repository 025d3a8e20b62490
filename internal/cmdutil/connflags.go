package cmdutil

import (
	"fmt"
	"strings"

	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"
	"github.com/spf13/pflag"
)

// ConsulFlags are the Consul connection flags on the root command. They
// behave like the consul CLI's (command/flags/http.go): api.DefaultConfig()
// reads every CONSUL_* variable first, then only the flags the user actually
// set override it. An unset flag never clobbers an environment variable.
type ConsulFlags struct {
	fs *pflag.FlagSet

	Addr          string
	Token         string
	TokenFile     string
	Datacenter    string
	CAFile        string
	ClientCert    string
	ClientKey     string
	TLSServerName string
}

// Register adds the flags to fs (the root command's persistent flags).
func (c *ConsulFlags) Register(fs *pflag.FlagSet) {
	c.fs = fs
	fs.StringVar(&c.Addr, "consul-addr", "", "Consul HTTP address, [scheme://]host:port (env CONSUL_HTTP_ADDR; default 127.0.0.1:8500)")
	fs.StringVar(&c.Token, "consul-token", "", "Consul ACL token (env CONSUL_HTTP_TOKEN)")
	fs.StringVar(&c.TokenFile, "consul-token-file", "", "file holding the Consul ACL token; wins over --consul-token (env CONSUL_HTTP_TOKEN_FILE)")
	fs.StringVar(&c.Datacenter, "consul-datacenter", "", "Consul datacenter to query (default: the agent's own)")
	fs.StringVar(&c.CAFile, "consul-ca-file", "", "CA certificate to verify Consul's TLS certificate (env CONSUL_CACERT)")
	fs.StringVar(&c.ClientCert, "consul-client-cert", "", "client certificate for Consul mTLS (env CONSUL_CLIENT_CERT)")
	fs.StringVar(&c.ClientKey, "consul-client-key", "", "client key for Consul mTLS (env CONSUL_CLIENT_KEY)")
	fs.StringVar(&c.TLSServerName, "consul-tls-server-name", "", "server name to expect in Consul's certificate (env CONSUL_TLS_SERVER_NAME)")
}

func (c *ConsulFlags) changed(name string) bool {
	return c.fs != nil && c.fs.Changed(name)
}

// Config returns api.DefaultConfig() with the flags the user set merged on
// top. Token precedence is then Consul's own (api.NewClient): --consul-token-file,
// --consul-token, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_TOKEN.
func (c *ConsulFlags) Config() *api.Config {
	cfg := api.DefaultConfig()
	if c.changed("consul-addr") {
		cfg.Address = c.Addr
		// An explicit https:// address must switch TLS on even when
		// CONSUL_HTTP_SSL is unset; api.NewClient handles the scheme prefix.
	}
	if c.changed("consul-token") {
		cfg.Token = c.Token
	}
	if c.changed("consul-token-file") {
		cfg.TokenFile = c.TokenFile
	}
	if c.changed("consul-datacenter") {
		cfg.Datacenter = c.Datacenter
	}
	if c.changed("consul-ca-file") {
		cfg.TLSConfig.CAFile = c.CAFile
	}
	if c.changed("consul-client-cert") {
		cfg.TLSConfig.CertFile = c.ClientCert
	}
	if c.changed("consul-client-key") {
		cfg.TLSConfig.KeyFile = c.ClientKey
	}
	if c.changed("consul-tls-server-name") {
		cfg.TLSConfig.Address = c.TLSServerName
	}
	return cfg
}

// DisplayAddr is the address as a person would recognise it in an error
// message: what they passed, or what the environment or default gave.
func DisplayAddr(cfg *api.Config) string {
	addr := cfg.Address
	if addr == "" {
		addr = "127.0.0.1:8500"
	}
	return addr
}

// DockerFlags are the Docker Engine connection flags. The environment
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION) is
// read by client.FromEnv exactly as the docker CLI reads it; --docker-host
// overrides only the host.
type DockerFlags struct {
	fs   *pflag.FlagSet
	Host string
}

// Register adds the flags to fs (the root command's persistent flags).
func (d *DockerFlags) Register(fs *pflag.FlagSet) {
	d.fs = fs
	fs.StringVar(&d.Host, "docker-host", "", "Docker Engine address, e.g. unix:///var/run/docker.sock or tcp://host:2376 (env DOCKER_HOST)")
}

// ClientOptions returns the options for client.NewClientWithOpts. API
// version negotiation is always on: Debian's engine speaks API 1.41 while
// the client library defaults to a much newer one.
func (d *DockerFlags) ClientOptions() []client.Opt {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if d.fs != nil && d.fs.Changed("docker-host") {
		opts = append(opts, client.WithHost(d.Host))
	}
	return opts
}

// validateDockerHost catches a malformed --docker-host before a client is
// built, so the error names the flag rather than an obscure parse failure.
func validateDockerHost(h string) error {
	if h == "" {
		return fmt.Errorf("--docker-host is empty")
	}
	if !strings.Contains(h, "://") {
		return fmt.Errorf("--docker-host %q needs a scheme: unix://, tcp://, npipe:// or fd://", h)
	}
	return nil
}
