// Package microsvc is what microctl's example services share to behave like
// go-micro services: go-micro's flag names and MICRO_* environment
// variables, the advertised address, registration in Consul with a TTL
// check kept alive in the background, and a HEALTHCHECK mode for images
// built FROM scratch (no shell, no curl).
package microsvc

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

// Options are go-micro's service settings.
type Options struct {
	Name, Version string
	Listen        string // --server_address
	Advertise     string // --server_advertise
	RegistryAddr  string // --registry_address
	TTL, Interval time.Duration
	NoRegister    bool
	Healthcheck   bool
}

// Env returns the environment variable key, or def when it is unset.
func Env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

type secondsFlag struct{ d *time.Duration }

func (s secondsFlag) String() string {
	if s.d == nil {
		return ""
	}
	return strconv.Itoa(int(s.d.Seconds()))
}

func (s secondsFlag) Set(v string) (err error) { *s.d, err = registry.ParseSeconds(v); return err }

// Bind adds go-micro's flags to fs, with defaults from the MICRO_*
// variables. defName is the default service name; noRegisterEnv names the
// variable that, set to 1, turns registration off.
func Bind(fs *flag.FlagSet, o *Options, defName, noRegisterEnv string) error {
	fs.StringVar(&o.Name, "server_name", Env("MICRO_SERVER_NAME", defName), "service name (env MICRO_SERVER_NAME)")
	fs.StringVar(&o.Version, "server_version", Env("MICRO_SERVER_VERSION", "latest"), "service version (env MICRO_SERVER_VERSION)")
	fs.StringVar(&o.Listen, "server_address", Env("MICRO_SERVER_ADDRESS", ":8080"), "address to listen on (env MICRO_SERVER_ADDRESS)")
	fs.StringVar(&o.Advertise, "server_advertise", Env("MICRO_SERVER_ADVERTISE", ""), "host[:port] to register; default: the first private IPv4 address, as go-micro does (env MICRO_SERVER_ADVERTISE)")
	fs.StringVar(&o.RegistryAddr, "registry_address", Env("MICRO_REGISTRY_ADDRESS", Env("CONSUL_HTTP_ADDR", "127.0.0.1:8500")), "Consul address (env MICRO_REGISTRY_ADDRESS, CONSUL_HTTP_ADDR; token: CONSUL_HTTP_TOKEN)")
	o.TTL, o.Interval = 90*time.Second, 30*time.Second // go-micro v2's defaults
	for _, e := range []struct {
		env string
		d   *time.Duration
	}{{"MICRO_REGISTER_TTL", &o.TTL}, {"MICRO_REGISTER_INTERVAL", &o.Interval}} {
		if v := os.Getenv(e.env); v != "" {
			d, err := registry.ParseSeconds(v)
			if err != nil {
				return fmt.Errorf("%s: %w", e.env, err)
			}
			*e.d = d
		}
	}
	fs.Var(secondsFlag{&o.TTL}, "register_ttl", "seconds Consul keeps the instance without a heartbeat (env MICRO_REGISTER_TTL)")
	fs.Var(secondsFlag{&o.Interval}, "register_interval", "seconds between heartbeats (env MICRO_REGISTER_INTERVAL)")
	fs.BoolVar(&o.NoRegister, "no_register", os.Getenv(noRegisterEnv) == "1", "serve without registering in Consul (env "+noRegisterEnv+"=1)")
	fs.BoolVar(&o.Healthcheck, "healthcheck", false, "GET /health on the local listener and exit 0 if it answers 200: a HEALTHCHECK for FROM-scratch images")
	return nil
}

// Consul returns a client for the registry address; the token and TLS
// settings come from the CONSUL_* variables.
func (o *Options) Consul() (*registry.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = o.RegistryAddr
	return registry.NewClient(cfg)
}

// Instance returns the registration of this process listening on ln: ID
// <name>-<uuid>, the advertised address, the TTL and interval.
func (o *Options) Instance(ln net.Listener, md map[string]string, eps []registry.Endpoint) (registry.Instance, error) {
	host, port, err := AdvertiseAddr(o.Advertise, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return registry.Instance{}, err
	}
	return registry.Instance{
		Name: o.Name, Version: o.Version, ID: o.Name + "-" + uuid.NewString(),
		Address: host, Port: port, Metadata: md, Endpoints: eps,
		TTL: o.TTL, Interval: o.Interval,
	}, nil
}

// Keep registers in in the background, retrying with backoff while Consul
// is not there yet (a stack starts everything at once), then heartbeats
// until ctx ends. The caller deregisters on shutdown with the returned
// registrar.
func Keep(ctx context.Context, c *registry.Client, in registry.Instance, logf func(string, ...any)) *registry.Registrar {
	reg := registry.NewRegistrar(c, in)
	go func() {
		for attempt := 1; ; attempt++ {
			err := reg.Register(ctx)
			if err == nil {
				logf("registered %s in Consul at %s (ttl %s, interval %s)", in.ID, c.Addr, in.TTL, in.Interval)
				reg.Run(ctx, func(err error) { logf("%v", err) })
				return
			}
			if ctx.Err() != nil {
				return
			}
			logf("%v (retrying)", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(registry.Backoff(attempt, 500*time.Millisecond, 5*time.Second)):
			}
		}
	}()
	return reg
}

// Serve serves srv on ln until ctx ends (or the server fails), then shuts
// down the way a registered service should: draining turns true (so
// /health answers 503), the instance leaves the registry (reg may be nil),
// and requests in flight get up to 10 s to finish.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, reg *registry.Registrar, draining *atomic.Bool, logf func(string, ...any)) error {
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	select {
	case err := <-srvErr:
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if reg != nil {
		// Leave first, so no new request is routed here; shutdown goes on
		// whatever the registry says.
		if err := reg.Deregister(shutdown); err != nil {
			logf("%v", err)
		}
	}
	return srv.Shutdown(shutdown)
}

// AdvertiseAddr picks the address to register. An explicit
// --server_advertise wins; a specific listen host is used as is; for a
// wildcard listener it is the first private IPv4 address of the host, which
// inside a Swarm task is its overlay address (go-micro's addr.Extract does
// the same).
func AdvertiseAddr(flagVal string, ln *net.TCPAddr) (string, int, error) {
	port := ln.Port
	if flagVal != "" {
		host, p, err := net.SplitHostPort(flagVal)
		if err != nil {
			return flagVal, port, nil // a bare host
		}
		if n, err := strconv.Atoi(p); err == nil {
			port = n
		}
		return host, port, nil
	}
	if !ln.IP.IsUnspecified() {
		return ln.IP.String(), port, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", 0, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsPrivate() {
			return ipn.IP.String(), port, nil
		}
	}
	return "127.0.0.1", port, nil
}

// Healthcheck GETs /health on the local listener and returns the exit code
// a Docker HEALTHCHECK wants: 0 when it answered 200.
func Healthcheck(listen string) int {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return 1
	}
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://127.0.0.1:" + port + "/health")
	if err != nil {
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// Logger returns a log.Printf with the program's name in front.
func Logger(prog string) func(string, ...any) {
	return func(format string, a ...any) { log.Printf(prog+": "+format, a...) }
}

// Sleep waits d or until ctx ends, whichever comes first.
func Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
