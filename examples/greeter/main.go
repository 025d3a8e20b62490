// Command greeter is a small HTTP service that registers itself in Consul
// exactly the way a go-micro service does: ID <name>-<uuid>, metadata,
// endpoints and version in t-/e-/v- tags, a TTL check that Consul drops the
// instance after when heartbeats stop, and a heartbeat every interval. It is
// what microctl's deploy, registry, health and bench commands are exercised
// against.
//
//	GET /        "Hello from <instance id>"
//	GET /health  "ok" (503 while shutting down)
//
// Flags keep go-micro's names and environment variables.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/pkg/registry"
)

type config struct {
	name, version          string
	listen, advertise      string
	registryAddr           string
	ttl, interval          time.Duration
	failStart, healthcheck bool
	noRegister             bool
}

func env(key, def string) string {
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

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	fs.StringVar(&c.name, "server_name", env("MICRO_SERVER_NAME", "go.micro.srv.greeter"), "service name (env MICRO_SERVER_NAME)")
	fs.StringVar(&c.version, "server_version", env("MICRO_SERVER_VERSION", "latest"), "service version (env MICRO_SERVER_VERSION)")
	fs.StringVar(&c.listen, "server_address", env("MICRO_SERVER_ADDRESS", ":8080"), "address to listen on (env MICRO_SERVER_ADDRESS)")
	fs.StringVar(&c.advertise, "server_advertise", env("MICRO_SERVER_ADVERTISE", ""), "host[:port] to register; default: the first private IPv4 address, as go-micro does (env MICRO_SERVER_ADVERTISE)")
	fs.StringVar(&c.registryAddr, "registry_address", env("MICRO_REGISTRY_ADDRESS", env("CONSUL_HTTP_ADDR", "127.0.0.1:8500")), "Consul address (env MICRO_REGISTRY_ADDRESS, CONSUL_HTTP_ADDR)")
	c.ttl, c.interval = 90*time.Second, 30*time.Second // go-micro v2's defaults
	for _, e := range []struct {
		env string
		d   *time.Duration
	}{{"MICRO_REGISTER_TTL", &c.ttl}, {"MICRO_REGISTER_INTERVAL", &c.interval}} {
		if v := os.Getenv(e.env); v != "" {
			d, err := registry.ParseSeconds(v)
			if err != nil {
				return c, fmt.Errorf("%s: %w", e.env, err)
			}
			*e.d = d
		}
	}
	fs.Var(secondsFlag{&c.ttl}, "register_ttl", "seconds Consul keeps the instance without a heartbeat (env MICRO_REGISTER_TTL)")
	fs.Var(secondsFlag{&c.interval}, "register_interval", "seconds between heartbeats (env MICRO_REGISTER_INTERVAL)")
	fs.BoolVar(&c.noRegister, "no_register", os.Getenv("GREETER_NO_REGISTER") == "1", "serve without registering in Consul (env GREETER_NO_REGISTER=1)")
	fs.BoolVar(&c.failStart, "fail_start", os.Getenv("GREETER_FAIL_START") == "1", "exit 1 at once: a service that crashes on start, for rollback tests (env GREETER_FAIL_START=1)")
	fs.BoolVar(&c.healthcheck, "healthcheck", false, "GET /health on the local listener and exit 0 if it answers 200: a HEALTHCHECK for FROM-scratch images")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	return c, nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Fatalf("greeter: %v", err)
	}
	if c.healthcheck {
		os.Exit(healthcheck(c.listen))
	}
	if c.failStart {
		log.Fatal("greeter: failing on start as asked (GREETER_FAIL_START)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		log.Fatalf("greeter: %v", err)
	}
}

func run(ctx context.Context, c config) error {
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	id := c.name + "-" + uuid.NewString()
	host, port, err := advertiseAddr(c.advertise, ln.Addr().(*net.TCPAddr))
	if err != nil {
		return err
	}

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s\n", id)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Printf("greeter %s (%s) listening on %s, advertising %s:%d", id, c.version, ln.Addr(), host, port)

	var reg *registry.Registrar
	if !c.noRegister {
		cfg := api.DefaultConfig()
		cfg.Address = c.registryAddr
		client, err := registry.NewClient(cfg)
		if err != nil {
			return err
		}
		reg = registry.NewRegistrar(client, registry.Instance{
			Name: c.name, Version: c.version, ID: id, Address: host, Port: port,
			Metadata: map[string]string{
				"transport": "http", "broker": "http", "server": "http", "registry": "consul", "protocol": "http",
			},
			Endpoints: []registry.Endpoint{
				{Name: "Greeter.Hello", Request: &registry.Value{Name: "Request", Type: "Request"},
					Response: &registry.Value{Name: "Response", Type: "Response"},
					Metadata: map[string]string{"method": "GET", "path": "/"}},
			},
			TTL: c.ttl, Interval: c.interval,
		})
		// Consul may start after us (a stack deploys both at once): retry
		// the first registration rather than dying.
		for attempt := 0; ; attempt++ {
			err := reg.Register(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			log.Printf("greeter: %v (retrying)", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
			}
		}
		log.Printf("greeter: registered %s in Consul at %s (ttl %s, interval %s)", id, c.registryAddr, c.ttl, c.interval)
		go reg.Run(ctx, func(err error) { log.Printf("greeter: %v", err) })
	}

	select {
	case err := <-srvErr:
		return err
	case <-ctx.Done():
	}
	// Leave the registry first so no new request is routed here, then
	// drain what is in flight.
	draining.Store(true)
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if reg != nil {
		if err := reg.Deregister(shutdown); err != nil {
			log.Printf("greeter: %v", err)
		} else {
			log.Printf("greeter: deregistered %s", id)
		}
	}
	return srv.Shutdown(shutdown)
}

// advertiseAddr picks the address to register. An explicit --server_advertise
// wins; a specific listen host is used as is; for a wildcard listener it is
// the first private IPv4 address of the host, which inside a Swarm task is
// its overlay address (go-micro's addr.Extract does the same).
func advertiseAddr(flagVal string, ln *net.TCPAddr) (string, int, error) {
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

func healthcheck(listen string) int {
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
