// Command greeter is a small HTTP service that registers itself in Consul
// exactly the way a go-micro service does: ID <name>-<uuid>, metadata,
// endpoints and version in t-/e-/v- tags, a TTL check that Consul drops the
// instance after when heartbeats stop, and a heartbeat every interval. It is
// what microctl's deploy, registry, health and bench commands are exercised
// against.
//
//	GET /        "Hello from <instance id>"
//	GET /health  "ok" (503 while shutting down)
//	POST /       Greeter.Call the go-micro rpc way, with -rpc (rpc.go)
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/microctl/microctl/examples/internal/microsvc"
	"github.com/microctl/microctl/pkg/registry"
)

type config struct {
	microsvc.Options
	failStart bool
	rpc       bool // also serve Greeter.Call the go-micro rpc way (rpc.go)
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	if err := microsvc.Bind(fs, &c.Options, "go.micro.srv.greeter", "GREETER_NO_REGISTER"); err != nil {
		return c, err
	}
	fs.BoolVar(&c.failStart, "fail_start", os.Getenv("GREETER_FAIL_START") == "1", "exit 1 at once: a service that crashes on start, for rollback tests (env GREETER_FAIL_START=1)")
	fs.BoolVar(&c.rpc, "rpc", os.Getenv("GREETER_RPC") == "1", "also serve and register Greeter.Call the go-micro rpc way on POST / (env GREETER_RPC=1)")
	return c, fs.Parse(args)
}

var logf = microsvc.Logger("greeter")

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Fatalf("greeter: %v", err)
	}
	if c.Healthcheck {
		os.Exit(microsvc.Healthcheck(c.Listen))
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
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return err
	}
	endpoints := []registry.Endpoint{{Name: "Greeter.Hello",
		Request:  &registry.Value{Name: "Request", Type: "Request"},
		Response: &registry.Value{Name: "Response", Type: "Response"},
		Metadata: map[string]string{"method": "GET", "path": "/"}}}
	if c.rpc {
		endpoints = append(endpoints, rpcEndpoint)
	}
	in, err := c.Instance(ln,
		map[string]string{"transport": "http", "broker": "http", "server": "http", "registry": "consul", "protocol": "http"},
		endpoints)
	if err != nil {
		return err
	}

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s\n", in.ID)
	})
	if c.rpc {
		mux.HandleFunc("POST /{$}", rpcHandler(c.Name, in.ID))
	}
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	var reg *registry.Registrar
	if !c.NoRegister {
		client, err := c.Consul()
		if err != nil {
			return err
		}
		reg = microsvc.Keep(ctx, client, in, logf)
	}
	logf("%s (%s) listening on %s, advertising %s:%d", in.ID, c.Version, ln.Addr(), in.Address, in.Port)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return microsvc.Serve(ctx, srv, ln, reg, &draining, logf)
}
