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

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/examples/internal/microsvc"
	"github.com/microctl/microctl/pkg/registry"
)

type config struct {
	microsvc.Options
	failStart bool
	// Misbehaviours for the deploy gate's tests (microctl/greeter:critical
	// and :err500); both off by default.
	criticalAfter time.Duration
	failRequests  bool
	rpc           bool // also serve Greeter.Call the go-micro rpc way (rpc.go)
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("greeter", flag.ContinueOnError)
	if err := microsvc.Bind(fs, &c.Options, "go.micro.srv.greeter", "GREETER_NO_REGISTER"); err != nil {
		return c, err
	}
	fs.BoolVar(&c.failStart, "fail_start", os.Getenv("GREETER_FAIL_START") == "1", "exit 1 at once: a service that crashes on start, for rollback tests (env GREETER_FAIL_START=1)")
	if v := os.Getenv("GREETER_CRITICAL_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("GREETER_CRITICAL_AFTER: %w", err)
		}
		c.criticalAfter = d
	}
	fs.DurationVar(&c.criticalAfter, "critical_after", c.criticalAfter, "register, then after this long stop heartbeating and mark the check critical while still serving: a version that goes critical, for deploy gate tests (env GREETER_CRITICAL_AFTER)")
	fs.BoolVar(&c.failRequests, "fail_requests", os.Getenv("GREETER_FAIL_REQUESTS") == "1", "answer 500 on every request to / while registering and passing: a bad version only real traffic shows, for canary tests (env GREETER_FAIL_REQUESTS=1)")
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
		if c.failRequests {
			http.Error(w, "failing every request as asked (GREETER_FAIL_REQUESTS)", http.StatusInternalServerError)
			return
		}
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
		hbCtx, stopHeartbeat := context.WithCancel(ctx)
		defer stopHeartbeat()
		reg = microsvc.Keep(hbCtx, client, in, logf)
		if c.criticalAfter > 0 {
			go goCritical(ctx, client, in, c.criticalAfter, stopHeartbeat)
		}
	}
	logf("%s (%s) listening on %s, advertising %s:%d", in.ID, c.Version, ln.Addr(), in.Address, in.Port)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return microsvc.Serve(ctx, srv, ln, reg, &draining, logf)
}

// goCritical stops the heartbeats after d and marks the TTL check critical,
// as a process whose registry client broke would look from Consul (and as
// Consul itself would mark it one TTL later), while the process goes on
// serving: the gate must catch it and not Swarm.
func goCritical(ctx context.Context, client *registry.Client, in registry.Instance, d time.Duration, stopHeartbeat func()) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	stopHeartbeat()
	q := (&api.QueryOptions{}).WithContext(ctx)
	for attempt := 1; ctx.Err() == nil; attempt++ {
		err := client.API.Agent().UpdateTTLOpts(in.CheckID(), "going critical as asked (GREETER_CRITICAL_AFTER)", api.HealthCritical, q)
		if err == nil {
			logf("marked %s critical as asked, still serving", in.ID)
			return
		}
		logf("mark critical: %v (retrying)", client.Err(err))
		microsvc.Sleep(ctx, registry.Backoff(attempt, 500*time.Millisecond, 5*time.Second))
	}
}
