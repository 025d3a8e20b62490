package stack

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/compose"
	stk "github.com/microctl/microctl/pkg/stack"
)

// parse runs the command's flag parsing and validation only.
func parse(t *testing.T, args ...string) (*Options, error) {
	t.Helper()
	return cmdtest.Parse(t, NewCmdDeploy, args...)
}

func TestDeployFlags(t *testing.T) {
	o, err := parse(t, "-f", "a.yml", "-f", "b.yml", "--stack", "shop", "--env-file", "prod.env", "--profile", "debug",
		"--prune", "--timeout", "90s", "--rollback-on-failure", "--resolve-image", "never", "--dry-run", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Files, ",") != "a.yml,b.yml" || o.Stack != "shop" || o.EnvFiles[0] != "prod.env" || o.Profiles[0] != "debug" ||
		!o.Prune || o.Timeout != 90*time.Second || !o.RollbackOnFailure || o.ResolveImage != "never" || !o.DryRun || !o.Output.JSON() {
		t.Errorf("options %+v", o)
	}
	o, err = parse(t, "-f", "a.yml", "--no-mesh", "--min-healthy", "5s", "--healthy-deadline", "20s")
	if err != nil {
		t.Fatal(err)
	}
	if !o.NoMesh || o.MinHealthy != 5*time.Second || o.HealthyDeadline != 20*time.Second {
		t.Errorf("mesh flags %+v", o)
	}
	o, err = parse(t, "-f", "a.yml")
	if err != nil {
		t.Fatal(err)
	}
	if o.Timeout != 5*time.Minute || o.ResolveImage != "changed" || o.Detach || o.Prune {
		t.Errorf("defaults %+v", o)
	}
}

func TestDeployUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "at least one compose file"},
		{[]string{"-f", "a.yml", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"-f", "a.yml", "--resolve-image", "sometimes"}, "--resolve-image must be always, changed or never"},
		{[]string{"-f", "a.yml", "--detach", "--rollback-on-failure"}, "cannot be used with --detach"},
		{[]string{"-f", "a.yml", "--min-healthy", "-1s"}, "must not be negative"},
		{[]string{"-f", "a.yml", "--min-healthy", "15s", "--healthy-deadline", "10s"}, "--healthy-deadline (10s) must be longer than --min-healthy (15s)"},
	}
	for _, tt := range tests {
		_, err := parse(t, tt.args...)
		var ue *cmdutil.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want a usage error with %q", tt.args, err, tt.want)
		}
	}
}

// TestRunStopsOnBadFile: a file that fails to load is an error before the
// Docker client is even asked for.
func TestRunStopsOnBadFile(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	asked := false
	err := run(context.Background(), &Options{IO: ios, Files: []string{"/nonexistent/stack.yml"}, Timeout: time.Minute, ResolveImage: "never",
		Docker: func() (dockerClient, error) { asked = true; return nil, errors.New("no") }})
	var ce *compose.ComposeError
	if !errors.As(err, &ce) || asked {
		t.Errorf("err %v (asked for docker: %v)", err, asked)
	}
}

func TestRenderPlan(t *testing.T) {
	var buf bytes.Buffer
	p := &stk.Plan{Stack: "shop", Services: []stk.ServicePlan{
		{Name: "api", FullName: "shop_api", Action: stk.ActionUpdate, Image: "img:2",
			Changes: []stk.Change{{Field: "image", From: "img:1", To: "img:2"}, {Field: "environment"}}},
		{Name: "db", FullName: "shop_db", Action: stk.ActionUnchanged, Image: "db:1"},
	}, Objects: []stk.ObjectPlan{{Kind: "config", Name: "shop_conf-0123456789", Action: stk.ActionCreate}}}
	if err := renderPlan(&buf, p); err != nil {
		t.Fatal(err)
	}
	want := `stack shop: 0 to create, 1 to update, 1 unchanged, 0 to remove
  update     service  shop_api  image img:1 -> img:2, environment
  unchanged  service  shop_db   db:1
  create     config   shop_conf-0123456789
`
	if got := buf.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDeployPushImagesFlags(t *testing.T) {
	opts, err := parse(t, "-f", "x.yml", "--push-images", "--engine-url", "tcp://{hostname}:2375")
	if err != nil {
		t.Fatal(err)
	}
	if !opts.PushImages || opts.Push.EngineURL != "tcp://{hostname}:2375" {
		t.Errorf("push %v %+v", opts.PushImages, opts.Push)
	}
	_, err = parse(t, "-f", "x.yml", "--engine-url", "tcp://{hostname}:2375")
	var ue *cmdutil.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--engine-url goes with --push-images") {
		t.Errorf("err = %v", err)
	}
}

// TestDeployReadsStdinThroughItsStreams: `deploy -f -` loads what the
// command's stdin (IOStreams.In) holds, not the process's.
func TestDeployReadsStdinThroughItsStreams(t *testing.T) {
	ios, in, _, _ := cmdutil.Test()
	in.WriteString("services:\n  api:\n   image: [\n") // not YAML
	asked := false
	err := run(context.Background(), &Options{IO: ios, Files: []string{"-"}, Stack: "stdin", Timeout: time.Minute, ResolveImage: "never",
		Docker: func() (dockerClient, error) { asked = true; return nil, errors.New("no") }})
	var ce *compose.ComposeError
	if !errors.As(err, &ce) || !strings.HasPrefix(ce.Err.Error(), "-:") || !strings.Contains(err.Error(), "invalid YAML") || asked {
		t.Errorf("err %v (asked for docker: %v), want the YAML error of stdin, named -", err, asked)
	}
}
