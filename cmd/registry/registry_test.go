package registry

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
)

func instance(name, id string, ttl time.Duration) registry.Instance {
	return registry.Instance{Name: name, ID: id, Version: "2.0", Address: "10.0.1.5", Port: 8080, TTL: ttl, Interval: ttl / 3,
		Metadata: map[string]string{"protocol": "mucp"}}
}

func ids(c *registry.Client, t *testing.T) []string {
	t.Helper()
	cat, err := c.Catalog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range cat.Instances {
		out = append(out, in.ID)
	}
	return out
}

func consulOf(c *registry.Client) func() (*registry.Client, error) {
	return func() (*registry.Client, error) { return c, nil }
}

func TestLsAndGet(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()
	in := instance("go.micro.srv.greeter", "greeter-1", time.Minute)
	if err := registry.NewRegistrar(c, in).Register(ctx); err != nil {
		t.Fatal(err)
	}
	odd := in
	odd.ID = "greeter-odd"
	reg := odd.Registration()
	reg.Tags = append(reg.Tags, "t-nothex", "primary")
	if err := c.API.Agent().ServiceRegister(reg); err != nil {
		t.Fatal(err)
	}

	ios, _, out, errOut := cmdutil.Test()
	if err := lsRun(ctx, &LsOptions{IO: ios, Consul: consulOf(c), Output: cmdutil.FormatJSON}); err != nil {
		t.Fatal(err)
	}
	var ls struct{ Services []health.ServiceSummary }
	if err := json.Unmarshal(out.Bytes(), &ls); err != nil {
		t.Fatal(err)
	}
	var g *health.ServiceSummary
	for i := range ls.Services {
		if ls.Services[i].Name == "go.micro.srv.greeter" {
			g = &ls.Services[i]
		}
	}
	if g == nil || g.Instances != 2 || g.Passing != 1 || g.Critical != 1 || strings.Join(g.Versions, ",") != "2.0" ||
		strings.Join(g.Tags, ",") != "primary" || g.MalformedTags != 1 {
		t.Errorf("ls = %+v", ls)
	}
	if !strings.Contains(errOut.String(), `warning: instance greeter-odd of go.micro.srv.greeter: malformed go-micro tag "t-nothex"`) {
		t.Errorf("stderr = %q", errOut)
	}

	ios, _, out, _ = cmdutil.Test()
	if err := getRun(ctx, &GetOptions{IO: ios, Consul: consulOf(c), Service: "go.micro.srv.greeter"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"greeter-1", "address    10.0.1.5:8080", "version    2.0", "ttl        1m0s (meta)",
		"interval   20s (meta)", "metadata   protocol=mucp", "malformed  t-nothex", "tags       primary", "serfHealth (node)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("get output lacks %q:\n%s", want, out)
		}
	}
	err := getRun(ctx, &GetOptions{IO: ios, Consul: consulOf(c), Service: "greeter"})
	if err == nil || err.Error() != "no service named greeter; did you mean go.micro.srv.greeter?" {
		t.Errorf("get unknown: %v", err)
	}
}

func TestDeregisterConfirmation(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()
	if err := registry.NewRegistrar(c, instance("svc", "svc-1", time.Minute)).Register(ctx); err != nil {
		t.Fatal(err)
	}
	opts := func(tty bool, answer string) *DeregisterOptions {
		ios, in, _, _ := cmdutil.Test()
		in.WriteString(answer)
		return &DeregisterOptions{IO: ios, Consul: consulOf(c), StdinTTY: func() bool { return tty }, InstanceID: "svc-1"}
	}

	// No terminal, no --yes: refused before anything is read.
	o := opts(false, "y\n")
	err := deregisterRun(ctx, o)
	var ue *cmdutil.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "stdin is not a terminal; pass --yes") {
		t.Fatalf("err = %v", err)
	}
	// A terminal, and the answer is no.
	o = opts(true, "n\n")
	if err := deregisterRun(ctx, o); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("err = %v", err)
	}
	if !contains(ids(c, t), "svc-1") {
		t.Fatal("removed although the answer was no")
	}
	// An unknown ID gets a suggestion.
	o = opts(true, "y\n")
	o.InstanceID = "svc-2"
	if err := deregisterRun(ctx, o); err == nil || err.Error() != "no instance with ID svc-2; did you mean svc-1?" {
		t.Fatalf("err = %v", err)
	}
	// Yes.
	o = opts(true, "yes\n")
	if err := deregisterRun(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := o.IO.Out.(interface{ String() string }).String(); !strings.Contains(got, "svc-1") || !strings.Contains(got, "agent") {
		t.Errorf("output = %q", got)
	}
	if contains(ids(c, t), "svc-1") {
		t.Fatal("svc-1 still registered")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestPrune: with --critical-for 4s, only the instance critical for the
// whole time goes; one turning critical midway and a passing one stay;
// --dry-run removes nothing.
func TestPrune(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dead := instance("svc", "svc-dead", time.Minute)
	if err := c.API.Agent().ServiceRegister(dead.Registration()); err != nil { // starts critical
		t.Fatal(err)
	}
	late := instance("svc", "svc-late", 3*time.Second) // passes once, critical after 3s
	if err := registry.NewRegistrar(c, late).Register(ctx); err != nil {
		t.Fatal(err)
	}
	alive := instance("svc", "svc-alive", 10*time.Second)
	ra := registry.NewRegistrar(c, alive)
	if err := ra.Register(ctx); err != nil {
		t.Fatal(err)
	}
	go ra.Run(ctx, nil)

	ios, _, out, errOut := cmdutil.Test()
	base := PruneOptions{IO: ios, Consul: consulOf(c), StdinTTY: func() bool { return false }, CriticalFor: 4 * time.Second,
		Services: []string{"svc"}}
	dry := base
	dry.DryRun, dry.Output = true, cmdutil.FormatJSON
	if err := pruneRun(ctx, &dry); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		DryRun     bool                    `json:"dry_run"`
		Candidates []health.PruneCandidate `json:"candidates"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.DryRun || len(rep.Candidates) != 1 || rep.Candidates[0].ID != "svc-dead" {
		t.Fatalf("dry run: %v %+v\n%s", err, rep, errOut)
	}
	if !contains(ids(c, t), "svc-dead") {
		t.Fatal("--dry-run removed something")
	}
	// Pass svc-late again: it is passing when the observation starts and
	// turns critical 3s into it, so it has been critical for less than
	// --critical-for (4s) when the observation ends.
	if err := c.API.Agent().UpdateTTL(late.CheckID(), "", api.HealthPassing); err != nil {
		t.Fatal(err)
	}
	// Without a terminal and without --yes: refused up front.
	if err := pruneRun(ctx, &base); err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Fatalf("err = %v", err)
	}
	run := base
	run.Yes = true
	ios, _, out, _ = cmdutil.Test()
	run.IO = ios
	if err := pruneRun(ctx, &run); err != nil {
		t.Fatal(err)
	}
	left := ids(c, t)
	if contains(left, "svc-dead") || !contains(left, "svc-late") || !contains(left, "svc-alive") {
		t.Errorf("left after prune: %v\n%s", left, out)
	}
	if !strings.Contains(out.String(), "svc-dead") {
		t.Errorf("prune output = %q", out)
	}
}

func TestPruneUnknownService(t *testing.T) {
	agent := testenv.StartAgent(t)
	ios, _, _, _ := cmdutil.Test()
	err := pruneRun(context.Background(), &PruneOptions{IO: ios, Consul: consulOf(agent.Client(t, "")), DryRun: true,
		Services: []string{"consol"}, StdinTTY: func() bool { return false }})
	if err == nil || err.Error() != "no service named consol; did you mean consul?" {
		t.Errorf("err = %v", err)
	}
}
