package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/golden"
	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/health"
	"github.com/microctl/microctl/pkg/registry"
	"github.com/microctl/microctl/pkg/swarm"
)

// parse parses a `health` command line (the group's own, or after "watch"
// or "lint") and returns the options the command would run with.
func parse(t *testing.T, args ...string) (err error, ho *Options, wo *WatchOptions, lo *LintOptions) {
	t.Helper()
	switch {
	case len(args) > 0 && args[0] == "watch":
		wo, err = cmdtest.Parse(t, NewCmdWatch, args[1:]...)
	case len(args) > 0 && args[0] == "lint":
		lo, err = cmdtest.Parse(t, NewCmdLint, args[1:]...)
	default:
		ho, err = cmdtest.Parse(t, NewCmdHealth, args...)
	}
	return err, ho, wo, lo
}

func TestFlags(t *testing.T) {
	err, ho, _, _ := parse(t, "a", "b", "a", "--state", "critical", "--fail-on", "warning", "--ttl", "15", "--interval", "10s")
	if err != nil || ho == nil || strings.Join(ho.Services, ",") != "a,b" || ho.State != "critical" || ho.FailOn != "warning" ||
		ho.Defaults.TTL != 15*time.Second || ho.Defaults.Interval != 10*time.Second {
		t.Fatalf("err %v, options %+v", err, ho)
	}
	_, _, wo, _ := parse(t, "watch", "svc", "--flap-transitions", "3", "--flap-window", "2m", "-o", "json")
	if wo == nil || wo.FlapTransitions != 3 || wo.FlapWindow != 2*time.Minute || !wo.Output.JSON() || wo.Services[0] != "svc" {
		t.Fatalf("watch options %+v", wo)
	}
	_, _, _, lo := parse(t, "lint", "--overlay-subnet", "micro=10.0.1.0/24", "--overlay-subnet", "10.0.2.0/24")
	if lo == nil || len(lo.OverlaySubnets) != 2 {
		t.Fatalf("lint options %+v", lo)
	}
	for _, bad := range [][]string{
		{"--state", "dead"}, {"--fail-on", "always"}, {"--ttl", "soon"},
		{"watch", "--flap-transitions", "1"}, {"watch", "--wait", "11m"}, {"watch", "--flap-window", "0"},
		{"lint", "--overlay-subnet", "10.0.1.0"},
	} {
		err, _, _, _ := parse(t, bad...)
		var ue *cmdutil.UsageError
		if err == nil || (!errors.As(err, &ue) && !strings.Contains(err.Error(), "invalid argument")) {
			t.Errorf("%v: err %v, want a usage error", bad, err)
		}
	}
}

func sampleReport() health.Report {
	ttl, iv := "15s", "10s"
	mk := func(svc, id, status string, checks ...health.CheckState) health.Instance {
		in := health.Instance{Service: svc, ID: id, Node: "node-1", Address: "10.0.1.5", Port: 8080, Status: status, Checks: checks}
		if len(checks) > 0 && checks[0].Kind == "ttl" {
			in.TTLText, in.IntervalText = &ttl, &iv
		}
		return in
	}
	ck := func(id, kind, status, out, scope string) health.CheckState {
		return health.CheckState{Check: registry.Check{CheckID: id, Status: status, Output: out, Interval: map[bool]string{true: "10s"}[kind == "http"]},
			Kind: kind, Scope: scope}
	}
	serf := ck("serfHealth", "serf", "passing", "Agent alive and reachable", "node")
	return health.Report{
		Instances: []health.Instance{
			mk("go.micro.srv.greeter", "greeter-1", "passing", ck("service:greeter-1", "ttl", "passing", "", "service"), serf),
			mk("go.micro.srv.greeter", "greeter-2", "critical", ck("service:greeter-2", "ttl", "critical", "TTL expired", "service"), serf),
			mk("web", "web-1", "warning", ck("web-http", "http", "warning", "HTTP GET http://10.0.1.6/health: 429 Too Many Requests\nretry later", "service"), serf),
			mk("bare", "bare-1", "passing"),
		},
		Summary: health.Summary{Services: 3, Counts: health.Counts{Instances: 4, Passing: 2, Warning: 1, Critical: 1}},
	}
}

func TestRenderGolden(t *testing.T) {
	ios, _, out, _ := cmdutil.Test()
	if err := render(&Options{IO: ios, State: "any"}, sampleReport()); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "health.txt", out.Bytes())
}

func TestFormatEventGolden(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	s := func(f float64) *health.Seconds { v := health.Seconds(f); return &v }
	ttl := "15s"
	events := []health.Event{
		{Time: ts, Type: health.EventRegistered, Service: "greeter", Instance: "greeter-1", Node: "n1", Address: "10.0.1.5:8080", Version: "1.2.0", Status: "passing", TTL: &ttl},
		{Time: ts, Type: health.EventTransition, Service: "greeter", Instance: "greeter-1", Node: "n1", Check: "service:greeter-1", Kind: "ttl",
			From: "passing", To: "critical", Status: "critical", Output: "TTL expired", PreviousFor: s(35.2), PreviousAtLeast: true},
		{Time: ts, Type: health.EventTransition, Service: "greeter", Instance: "greeter-1", Node: "n1", Check: "service:greeter-1", Kind: "ttl",
			From: "critical", To: "passing", Status: "passing", PreviousFor: s(4.25)},
		{Time: ts, Type: health.EventFlapping, Service: "greeter", Instance: "greeter-1", Node: "n1", Check: "service:greeter-1", Kind: "ttl",
			To: "passing", Transitions: 4, Window: s(600)},
		{Time: ts, Type: health.EventTransition, Node: "n2", Check: "serfHealth", Kind: "serf", From: "passing", To: "critical", PreviousFor: s(1)},
		{Time: ts, Type: health.EventCheckAdded, Service: "web", Instance: "web-1", Node: "n1", Check: "http", Kind: "http", To: "warning"},
		{Time: ts, Type: health.EventCheckRemoved, Service: "web", Instance: "web-1", Node: "n1", Check: "http", Kind: "http", From: "warning"},
		{Time: ts, Type: health.EventDeregistered, Service: "greeter", Instance: "greeter-1", Node: "n1", Status: "critical", PreviousFor: s(90)},
	}
	var b bytes.Buffer
	for _, e := range events {
		b.WriteString(FormatEvent(e) + "\n")
	}
	enc := json.NewEncoder(&b)
	for _, e := range events[:2] {
		_ = enc.Encode(e)
	}
	golden.Assert(t, "events.txt", b.Bytes())
}

func TestRenderLintGolden(t *testing.T) {
	ios, _, out, _ := cmdutil.Test()
	rep := health.LintReport{Instances: 3, Findings: []health.Finding{
		{Rule: health.RuleIntervalGETTL, Severity: health.SevError, Service: "greeter", Instance: "greeter-1",
			Message: "interval 3s >= TTL 2s: …", Hint: "heartbeat at most every TTL/2"},
		{Rule: health.RuleTTLMismatch, Severity: health.SevWarning, Service: "greeter", Message: "instances disagree on TTL: 2s (1 instance(s)), 15s (2 instance(s))"},
	}}
	renderLint(&LintOptions{IO: ios}, rep)
	golden.Assert(t, "lint.txt", out.Bytes())
}

func TestNetworksOf(t *testing.T) {
	p := netip.MustParsePrefix
	got := networksOf(&swarm.AddressSpace{
		Overlays:  []swarm.Subnet{{Name: "micro", Prefix: p("10.0.1.0/24")}},
		Ingress:   []swarm.Subnet{{Name: "ingress", Prefix: p("10.0.0.0/24")}},
		Bridges:   []swarm.Subnet{{Name: "docker_gwbridge", Prefix: p("172.18.0.0/16")}},
		NodeAddrs: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
	})
	want := &health.Networks{
		Overlays:  []health.Subnet{{Name: "micro", Prefix: p("10.0.1.0/24")}},
		Ingress:   []health.Subnet{{Name: "ingress", Prefix: p("10.0.0.0/24")}},
		Bridges:   []health.Subnet{{Name: "docker_gwbridge", Prefix: p("172.18.0.0/16")}},
		NodeAddrs: []netip.Addr{netip.MustParseAddr("192.168.1.10")},
	}
	if !equalJSON(got, want) {
		t.Errorf("networks = %+v, want %+v", got, want)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestHealthAgainstAgent runs the command's run against a real agent: a
// critical instance makes it exit 3 unless --fail-on never.
func TestHealthAgainstAgent(t *testing.T) {
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	ctx := context.Background()
	ok := registry.Instance{Name: "greeter", ID: "greeter-ok", Version: "1.0", Address: "10.0.1.5", Port: 80, TTL: time.Hour, Interval: 20 * time.Minute}
	if err := registry.NewRegistrar(c, ok).Register(ctx); err != nil {
		t.Fatal(err)
	}
	bad := ok
	bad.ID = "greeter-bad"
	if err := c.API.Agent().ServiceRegister(bad.Registration()); err != nil { // a TTL check starts critical
		t.Fatal(err)
	}
	runH := func(args ...string) (*bytes.Buffer, *bytes.Buffer, error) {
		ios, _, out, errOut := cmdutil.Test()
		o := &Options{IO: ios, Consul: func() (*registry.Client, error) { return c, nil }, State: "any", FailOn: "critical"}
		for i := 0; i < len(args); i += 2 {
			switch args[i] {
			case "--fail-on":
				o.FailOn = args[i+1]
			case "--state":
				o.State = args[i+1]
			case "-o":
				o.Output = cmdutil.Format(args[i+1])
			case "svc":
				o.Services = append(o.Services, args[i+1])
			}
		}
		return out, errOut, run(ctx, o)
	}
	out, _, err := runH()
	var ue *cmdutil.UnhealthyError
	if !errors.As(err, &ue) || ue.Msg != "1 of 3 instance(s) critical or worse (--fail-on critical)" {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(out.String(), "3 instance(s) of 2 service(s): 2 passing, 0 warning, 1 critical") ||
		!strings.Contains(out.String(), "1h0m0s") {
		t.Errorf("output:\n%s", out)
	}
	if _, _, err := runH("--fail-on", "never"); err != nil {
		t.Errorf("--fail-on never: %v", err)
	}
	out, _, err = runH("--state", "critical", "-o", "json", "svc", "greeter")
	var rep health.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil || !errors.As(err, &ue) || len(rep.Instances) != 1 ||
		rep.Instances[0].ID != "greeter-bad" || !rep.Unhealthy || rep.Summary.Instances != 2 || rep.Instances[0].TTLSource != health.FromMeta {
		t.Errorf("json: %v %v %+v", jerr, err, rep)
	}
	if _, _, err := runH("svc", "greter"); err == nil || err.Error() != "no service named greter; did you mean greeter?" {
		t.Errorf("unknown service: %v", err)
	}
}
