package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/registry"
)

// hostileCase is one row of TestHostileInput: a command line run by the
// built binary, and what must come back. Rows for new areas go at the end
// of hostileCases; placeholders in args and env are replaced before the
// run:
//
//	$SILENT    host:port of a server that accepts and never answers
//	$HTML      host:port of a web server answering every request with HTML
//	$NOTFOUND  host:port of a server answering 404 to everything
//	$GW401     host:port of an API gateway answering 401 without a token
//	$CONSUL    the private Consul agent holding the hostile registrations
//
// CONSUL_HTTP_ADDR is $CONSUL and DOCKER_HOST the test engine unless a
// row's env or flags say otherwise. Every row must leave the agent's
// catalog and KV, and the engine's objects named in watch, as they were.
type hostileCase struct {
	name string
	args []string
	env  []string
	code int
	// stderr must be at most one line, contain want and no stack trace.
	want string
	// stdout, when set, must contain stdoutWant and never stdoutNot.
	stdoutWant, stdoutNot string
	// json: stdout must be valid JSON.
	json bool
}

// Names the hostile registrations use.
const (
	evilService  = "evil"
	wideService  = "grüße dienst"
	escTag       = "\x1b[31mred\x1b[0m"
	titleOSC     = "\x1b]0;pwned\x07"
	bidiOverride = "\u202egnp.exe"
)

var longValue = strings.Repeat("long-", 100)

func hostileCases() []hostileCase {
	timeoutMsg := func(peer string) string { return peer + " at $SILENT did not answer within 1s" }
	return []hostileCase{
		// 1. Nothing hangs: a server that accepts and never answers.
		{name: "registry ls, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "registry", "ls"}, code: 1, want: timeoutMsg("Consul")},
		{name: "registry get, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "registry", "get", "x"}, code: 1, want: timeoutMsg("Consul")},
		{name: "registry deregister, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "registry", "deregister", "x-1", "--yes"}, code: 1, want: "$SILENT did not answer within 1s"},
		{name: "key show, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "key", "show"}, code: 1, want: timeoutMsg("Consul")},
		{name: "health, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "health"}, code: 1, want: timeoutMsg("Consul")},
		{name: "health watch before its first line, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "health", "watch"}, code: 1, want: timeoutMsg("Consul")},
		{name: "health lint, silent Consul", args: []string{"--timeout", "1s", "--consul-addr", "$SILENT", "health", "lint"}, code: 1, want: timeoutMsg("Consul")},
		{name: "MICROCTL_TIMEOUT, silent Consul", args: []string{"--consul-addr", "$SILENT", "registry", "ls"}, env: []string{"MICROCTL_TIMEOUT=1s"}, code: 1, want: timeoutMsg("Consul")},
		{name: "ps, silent engine", args: []string{"--timeout", "1s", "--docker-host", "tcp://$SILENT", "ps"}, code: 1, want: "the Docker Engine at tcp://$SILENT did not answer within 1s"},
		{name: "swarm status, silent engine", args: []string{"--timeout", "1s", "--docker-host", "tcp://$SILENT", "swarm", "status"}, code: 1, want: "the Docker Engine at tcp://$SILENT did not answer within 1s"},
		{name: "network ls, silent engine", args: []string{"--timeout", "1s", "--docker-host", "tcp://$SILENT", "network", "ls"}, code: 1, want: "the Docker Engine at tcp://$SILENT did not answer within 1s"},
		{name: "rm, silent engine", args: []string{"--timeout", "1s", "--docker-host", "tcp://$SILENT", "rm", "e2e-hostile-none"}, code: 1, want: "the Docker Engine at tcp://$SILENT did not answer within 1s"},
		{name: "doctor, silent everything", args: []string{"--docker-host", "tcp://$SILENT", "--consul-addr", "$SILENT", "doctor"}, env: []string{"MICROCTL_TIMEOUT=1s"}, code: 3, stdoutWant: "did not answer within 1s"},

		// 2. A server that is not Consul or not a Docker Engine says so.
		{name: "registry ls, HTML server", args: []string{"--consul-addr", "$HTML", "registry", "ls"}, code: 1, want: "the server at $HTML is not a Consul agent"},
		{name: "key show, HTML server", args: []string{"--consul-addr", "$HTML", "key", "show"}, code: 1, want: "the server at $HTML is not a Consul agent"},
		{name: "registry get, 404 server", args: []string{"--consul-addr", "$NOTFOUND", "registry", "get", "x"}, code: 1, want: "the server at $NOTFOUND is not a Consul agent"},
		{name: "health, API gateway", args: []string{"--consul-addr", "$GW401", "health"}, code: 1, want: "the server at $GW401 is not a Consul agent"},
		{name: "doctor, API gateway as Consul", args: []string{"--consul-addr", "$GW401", "doctor"}, code: 3, stdoutWant: "is not a Consul agent", stdoutNot: "Consul answers"},
		{name: "ps, HTML server", args: []string{"--docker-host", "tcp://$HTML", "ps"}, code: 1, want: "the server at tcp://$HTML is not a Docker Engine"},
		{name: "swarm status, 404 server", args: []string{"--docker-host", "tcp://$NOTFOUND", "swarm", "status"}, code: 1, want: "the server at tcp://$NOTFOUND is not a Docker Engine"},
		{name: "network ls, API gateway", args: []string{"--docker-host", "tcp://$GW401", "network", "ls"}, code: 1, want: "the server at tcp://$GW401 is not a Docker Engine"},

		// 4. Hostile content: names in any script work; what comes from
		// Consul is shown, never executed; long values are cut in tables
		// and whole in JSON.
		{name: "registry get, non-ASCII name with a space", args: []string{"registry", "get", wideService}, code: 0, stdoutWant: "wide-1"},
		{name: "health of a non-ASCII service", args: []string{"health", wideService}, code: 0, stdoutWant: "wide-1"},
		{name: "registry ls shows escapes", args: []string{"registry", "ls"}, code: 0, stdoutWant: `\x1b[31mred`, stdoutNot: "\x1b"},
		{name: "registry get shows escapes", args: []string{"registry", "get", evilService}, code: 0, stdoutWant: `\x1b]0;pwned\x07`, stdoutNot: "\x1b"},
		{name: "registry get shows a bidi override", args: []string{"registry", "get", evilService}, code: 0, stdoutWant: `\u202e`, stdoutNot: "\u202e"},
		{name: "health shows check output escaped", args: []string{"health", evilService}, code: 0, stdoutWant: `\x1b[2J`, stdoutNot: "\x1b"},
		{name: "registry ls cuts a long tag", args: []string{"registry", "ls"}, code: 0, stdoutWant: "…", stdoutNot: longValue},
		{name: "registry get -o json is whole and valid", args: []string{"registry", "get", evilService, "-o", "json"}, code: 0, json: true, stdoutWant: longValue, stdoutNot: "\x1b"},
		{name: "unknown service in another script", args: []string{"registry", "get", "nosuch ü"}, code: 1, want: `nosuch ü`},
		{name: "a name with an escape is echoed escaped", args: []string{"registry", "get", "no\x1b[2Jsuch"}, code: 1, want: `"no\x1b[2Jsuch"`},

		// 5. Usage errors are exit 2.
		{name: "completion for an unknown shell", args: []string{"completion", "nosuch"}, code: 2, want: `unknown command "nosuch"`},
		{name: "help on an unknown topic", args: []string{"help", "nosuch"}, code: 2, want: `unknown help topic "nosuch"`},
		{name: "rm of an impossible stack name", args: []string{"rm", "bad name"}, code: 2, want: `invalid stack name "bad name"`},
		{name: "ps of an impossible stack name", args: []string{"ps", "x/y"}, code: 2, want: `invalid stack name "x/y"`},
		{name: "deploy with an impossible --stack", args: []string{"deploy", "-f", "x.yml", "--stack", "Bad Name!"}, code: 2, want: `invalid --stack "Bad Name!"`},
		{name: "scale with a service twice", args: []string{"scale", "e2e-hostile_a=1", "e2e-hostile_a=2"}, code: 2, want: "e2e-hostile_a is given more than once"},
		{name: "key rotate HS256 outside legacy mode", args: []string{"key", "rotate", "--alg", "HS256"}, code: 2, want: "HS256 only in legacy mode"},
		{name: "negative --timeout", args: []string{"--timeout", "-1s", "registry", "ls"}, code: 2, want: "--timeout -1s is negative"},
		{name: "malformed MICROCTL_TIMEOUT", args: []string{"registry", "ls"}, env: []string{"MICROCTL_TIMEOUT=banana"}, code: 2, want: `MICROCTL_TIMEOUT="banana" is not a duration`},
	}
}

// TestHostileInput runs every hostileCase against the built binary and
// checks exit code, one-line stderr, no stack trace, and that the Consul
// agent and the engine are as they were.
func TestHostileInput(t *testing.T) {
	agent := testenv.StartAgent(t)
	cc := agent.Client(t, "")
	seedHostile(t, cc)
	if r := microctl(t, []string{"CONSUL_HTTP_ADDR=" + agent.Addr}, "key", "init"); r.Code != 0 {
		t.Fatalf("key init: %d %s", r.Code, r.Stderr)
	}
	dc := testenv.Docker(t)

	silent := testenv.SilentServer(t)
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><html><body>It works</body></html>")
	}))
	defer html.Close()
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "missing or invalid bearer token", http.StatusUnauthorized)
	}))
	defer gw.Close()
	hostOf := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	expand := strings.NewReplacer("$SILENT", silent, "$HTML", hostOf(html), "$NOTFOUND", hostOf(notFound),
		"$GW401", hostOf(gw), "$CONSUL", agent.Addr).Replace

	beforeC, beforeD := consulState(t, cc), dockerState(t, dc)
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = expand(a)
			}
			env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=", "MICROCTL_TIMEOUT="}
			for _, e := range tc.env {
				env = append(env, expand(e))
			}
			r := microctl(t, env, args...)
			if r.Code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, tc.code, r.Stdout, r.Stderr)
			}
			if strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
				t.Errorf("stderr is more than one line: %q", r.Stderr)
			}
			if want := expand(tc.want); !strings.Contains(r.Stderr, want) {
				t.Errorf("stderr %q, want it to contain %q", r.Stderr, want)
			}
			if strings.Contains(r.Stderr+r.Stdout, "goroutine ") || strings.Contains(r.Stderr, "panic") {
				t.Errorf("a stack trace or panic: %s", r.Stderr)
			}
			if strings.Contains(r.Stderr, "\x1b") {
				t.Errorf("stderr carries a raw escape: %q", r.Stderr)
			}
			if tc.stdoutWant != "" && !strings.Contains(r.Stdout, expand(tc.stdoutWant)) {
				t.Errorf("stdout does not contain %q:\n%s", tc.stdoutWant, r.Stdout)
			}
			if tc.stdoutNot != "" && strings.Contains(r.Stdout, tc.stdoutNot) {
				t.Errorf("stdout contains %q:\n%s", tc.stdoutNot, r.Stdout)
			}
			if tc.json && !json.Valid([]byte(r.Stdout)) {
				t.Errorf("stdout is not valid JSON:\n%s", r.Stdout)
			}
		})
	}
	if after := consulState(t, cc); !reflect.DeepEqual(beforeC, after) {
		t.Errorf("Consul state changed:\nbefore %v\nafter  %v", beforeC, after)
	}
	if after := dockerState(t, dc); !reflect.DeepEqual(beforeD, after) {
		t.Errorf("Docker state changed:\nbefore %v\nafter  %v", beforeD, after)
	}
}

// seedHostile registers what a hostile or careless service could put in
// Consul: escape sequences in tags, metadata and check output, a bidi
// override, a very long value, and a name in another script with a space.
func seedHostile(t *testing.T, c *registry.Client) {
	t.Helper()
	ag := c.API.Agent()
	regs := []*api.AgentServiceRegistration{
		{ID: "evil-1", Name: evilService, Address: "127.0.0.1", Port: 1,
			Tags:  []string{escTag, longValue},
			Meta:  map[string]string{"title": titleOSC, "file": bidiOverride, "long": longValue},
			Check: &api.AgentServiceCheck{CheckID: "service:evil-1", TTL: "10m"}},
		{ID: "wide-1", Name: wideService, Address: "127.0.0.1", Port: 2,
			Check: &api.AgentServiceCheck{CheckID: "service:wide-1", TTL: "10m"}},
	}
	for _, r := range regs {
		if err := ag.ServiceRegister(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := ag.UpdateTTL("service:evil-1", "\x1b[2J\x1b[Hall clear", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	if err := ag.UpdateTTL("service:wide-1", "ok", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
}

// consulState is what a command could change in the agent: every instance
// with its checks' status, and every KV key with its modify index.
func consulState(t *testing.T, c *registry.Client) []string {
	t.Helper()
	cat, err := c.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range cat.Instances {
		s := "instance " + in.Node + "/" + in.ID
		for _, ch := range in.Checks {
			s += " " + ch.CheckID + "=" + ch.Status
		}
		out = append(out, s)
	}
	pairs, _, err := c.API.KV().List("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		out = append(out, fmt.Sprintf("kv %s@%d", p.Key, p.ModifyIndex))
	}
	sort.Strings(out)
	return out
}

// dockerState is what the rows could touch on the shared engine: objects of
// the stacks and the networks they name (all starting e2e-hostile). Other
// tests change other things on the same engine meanwhile.
func dockerState(t *testing.T, c client.APIClient) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	svcs, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", "e2e-hostile"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		out = append(out, fmt.Sprintf("service %s@%d", s.Spec.Name, s.Version.Index))
	}
	nets, err := c.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", "e2e-hostile"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		out = append(out, "network "+n.Name+" "+n.ID)
	}
	sort.Strings(out)
	return out
}
