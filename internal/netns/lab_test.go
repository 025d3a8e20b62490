//go:build linux

package netns

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

func requireLab(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Docker Engines (-short)")
	}
	if os.Getenv("MICROCTL_IT_DOCKER") != "1" {
		t.Skip("starts Docker Engines in network namespaces: set MICROCTL_IT_DOCKER=1 to run")
	}
	if err := Available(); err != nil {
		t.Skipf("no lab here: %v", err)
	}
}

// TestLabStartsAndSweeps starts two engines, checks each answers with its
// own hostname on its own socket, then plays a crashed owner and checks
// that Sweep leaves nothing behind: no engine, namespace, mount, cgroup or
// directory.
func TestLabStartsAndSweeps(t *testing.T) {
	requireLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	lab, err := New(ctx, WithNodes(2), WithLog(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	if err := lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range lab.Nodes {
		cli, err := client.NewClientWithOpts(client.WithHost(n.Host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		info, err := cli.Info(ctx)
		cli.Close()
		if err != nil {
			t.Fatal(err)
		}
		if info.Name != n.Hostname || info.Driver != "vfs" || info.DockerRootDir != filepath.Join(n.Dir, "data") {
			t.Errorf("%s: name %q driver %q root %q", n.Name, info.Name, info.Driver, info.DockerRootDir)
		}
		pids = append(pids, n.cmd.Process.Pid)
	}

	// The owner "dies": Sweep must close the lab from its manifest alone.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	var m Lab
	b, _ := os.ReadFile(filepath.Join(lab.Dir, "lab.json"))
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m.Owner = dead.Process.Pid
	b, _ = json.Marshal(&m)
	if err := os.WriteFile(filepath.Join(lab.Dir, "lab.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	swept, err := Sweep()
	if err != nil {
		t.Errorf("sweep: %v", err)
	}
	if len(swept) != 1 || swept[0] != lab.Dir {
		t.Fatalf("swept %v, want [%s]", swept, lab.Dir)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("dockerd %d still runs", pid)
		}
	}
	if _, err := os.Stat(lab.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists", lab.Dir)
	}
	ns, _ := os.ReadDir("/run/netns")
	for _, e := range ns {
		if strings.HasPrefix(e.Name(), "mctl-"+lab.ID) {
			t.Errorf("namespace %s left", e.Name())
		}
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), lab.Dir) {
		t.Errorf("mounts left under %s", lab.Dir)
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/mctl-" + lab.ID + "-*"); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
}
