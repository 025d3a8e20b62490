package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/netns"
)

// clusterLab drives the cluster lab's program (internal/netns/cmd/mctl-lab,
// what scripts/cluster.sh runs) under a lab name of the test's own, so a
// person's lab ("cluster") is left alone.
type clusterLab struct {
	t    *testing.T
	bin  string
	name string
}

func requireClusterLab(t *testing.T) *clusterLab {
	t.Helper()
	if testing.Short() {
		t.Skip("starts three Docker Engines (-short)")
	}
	if os.Getenv("MICROCTL_IT_DOCKER") != "1" {
		t.Skip("starts Docker Engines in network namespaces: set MICROCTL_IT_DOCKER=1 to run")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("no namespace lab here: %v", err)
	}
	binary(t, ".")
	c := &clusterLab{t: t, bin: binary(t, "internal/netns/cmd/mctl-lab"), name: fmt.Sprintf("it-%06x", rand.IntN(1<<24))}
	t.Cleanup(func() {
		if r := c.run("down"); r.Code != 0 {
			t.Errorf("lab down: exit %d\n%s", r.Code, r.Stderr)
		}
	})
	return c
}

func (c *clusterLab) run(args ...string) Result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if args[0] == "up" {
		args = append(args, "--microctl", binary(c.t, "."))
	}
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append(os.Environ(), "MICROCTL_LAB_NAME="+c.name)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("mctl-lab %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// env returns the lab's exports as NAME=value pairs.
func (c *clusterLab) env() map[string]string {
	c.t.Helper()
	r := c.run("env")
	if r.Code != 0 {
		c.t.Fatalf("env: exit %d\n%s", r.Code, r.Stderr)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(r.Stdout))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), " #")
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitSwarm runs `microctl swarm status` on the manager until it exits
// with code, and returns that run.
func waitSwarm(t *testing.T, env []string, code int, within time.Duration) Result {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := microctl(t, env, "swarm", "status")
		if r.Code == code || time.Now().After(deadline) {
			return r
		}
		time.Sleep(time.Second)
	}
}

var labDirRE = regexp.MustCompile(`in (/\S+)`)

// TestClusterLab: the lab's own commands. up (twice: the second reuses),
// status and env; stop-node and partition-node seen by `microctl swarm
// status` (exit 3 naming the node) and by the lab's status (exit 3), then
// start-node and heal-node back to a ready swarm; a lab whose forwarder
// was killed is swept by the next up; down leaves nothing.
func TestClusterLab(t *testing.T) {
	lab := requireClusterLab(t)
	r := lab.run("up", "--images", "")
	if r.Code != 0 {
		t.Fatalf("up: exit %d\n%s", r.Code, r.Stderr)
	}
	r = lab.run("up", "--images", "")
	m := labDirRE.FindStringSubmatch(r.Stderr)
	if r.Code != 0 || !strings.Contains(r.Stderr, "reusing the lab in ") || m == nil {
		t.Fatalf("second up: exit %d\n%s", r.Code, r.Stderr)
	}
	dir := m[1]
	env := lab.env()
	for _, k := range []string{"DOCKER_HOST", "CONSUL_HTTP_ADDR", "MICROCTL_LAB_N1", "MICROCTL_LAB_N2", "MICROCTL_LAB_N3"} {
		if env[k] == "" {
			t.Fatalf("env lacks %s: %v", k, env)
		}
	}
	if !strings.HasPrefix(env["CONSUL_HTTP_ADDR"], "127.0.0.1:") || env["DOCKER_HOST"] != env["MICROCTL_LAB_N1"] {
		t.Errorf("env: %v", env)
	}
	on := []string{"DOCKER_HOST=" + env["DOCKER_HOST"]}
	if r := waitSwarm(t, on, 0, time.Minute); r.Code != 0 || !strings.Contains(r.Stdout, "3 nodes, 3 ready, 1 manager") {
		t.Fatalf("swarm status: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if r := lab.run("status"); r.Code != 0 {
		t.Errorf("lab status: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	for _, fault := range []struct{ cut, mend, state string }{
		{"stop-node", "start-node", "stopped"},
		{"partition-node", "heal-node", "cut"},
	} {
		if r := lab.run(fault.cut, "n3"); r.Code != 0 {
			t.Fatalf("%s n3: exit %d\n%s", fault.cut, r.Code, r.Stderr)
		}
		r := lab.run("status")
		if r.Code != 3 || !regexp.MustCompile(`(?m)^n3 .* `+fault.state+` `).MatchString(r.Stdout) {
			t.Errorf("lab status after %s: exit %d\n%s", fault.cut, r.Code, r.Stdout)
		}
		// Swarm's heartbeat period is 5 s; a node is down after a few missed.
		r = waitSwarm(t, on, 3, time.Minute)
		if r.Code != 3 || !regexp.MustCompile(`node n3 \(\w+\) is down`).MatchString(r.Stderr) {
			t.Errorf("swarm status after %s n3: exit %d, want 3 naming n3\n%s%s", fault.cut, r.Code, r.Stdout, r.Stderr)
		}
		if r := lab.run(fault.mend, "n3"); r.Code != 0 {
			t.Fatalf("%s n3: exit %d\n%s", fault.mend, r.Code, r.Stderr)
		}
		if r := waitSwarm(t, on, 0, time.Minute); r.Code != 0 {
			t.Errorf("swarm status after %s n3: exit %d\n%s%s", fault.mend, r.Code, r.Stdout, r.Stderr)
		}
		if r := lab.run("status"); r.Code != 0 {
			t.Errorf("lab status after %s: exit %d\n%s", fault.mend, r.Code, r.Stdout)
		}
	}

	// The forwarder owns the lab: killed, its lab is stale, and the next
	// up sweeps it and makes a new one.
	l, err := netns.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(l.Owner, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50 && l.OwnerAlive(); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	r = lab.run("up", "--images", "")
	if r.Code != 0 || !strings.Contains(r.Stderr, "swept stale labs ["+dir+"]") {
		t.Fatalf("up after the forwarder died: exit %d\n%s", r.Code, r.Stderr)
	}
	assertLabGone(t, l)
	env2 := lab.env()
	if env2["DOCKER_HOST"] == env["DOCKER_HOST"] {
		t.Errorf("the new lab has the old one's engine %s", env2["DOCKER_HOST"])
	}
	l2, err := netns.Load(filepath.Dir(filepath.Dir(strings.TrimPrefix(env2["DOCKER_HOST"], "unix://"))))
	if err != nil {
		t.Fatal(err)
	}
	if r := lab.run("down"); r.Code != 0 {
		t.Fatalf("down: exit %d\n%s", r.Code, r.Stderr)
	}
	assertLabGone(t, l2)
	if r := lab.run("status"); r.Code != 1 || !strings.Contains(r.Stderr, "no cluster lab runs") {
		t.Errorf("status after down: exit %d\n%s", r.Code, r.Stderr)
	}
}

// assertLabGone checks that nothing of the lab is left: directory,
// namespaces, mounts, processes, the forwarder.
func assertLabGone(t *testing.T, l *netns.Lab) {
	t.Helper()
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", l.Dir)
	}
	ns, _ := os.ReadDir("/run/netns")
	for _, e := range ns {
		if strings.HasPrefix(e.Name(), "mctl-"+l.ID) {
			t.Errorf("namespace %s left", e.Name())
		}
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(mi, []byte(l.Dir+"/")) {
		t.Errorf("mounts left under %s", l.Dir)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(l.Dir)) {
			t.Errorf("process %s left: %q", filepath.Base(filepath.Dir(p)), bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}
