package spread

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
)

// workerImage builds this checkout's microctl as a static binary in an
// image FROM scratch (the same shape as microctl/microctl:dev, but with the
// code under test), removed when the test ends.
func workerImage(t *testing.T, cli client.APIClient) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "microctl")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY microctl /microctl\nENTRYPOINT [\"/microctl\"]\n")},
		{"microctl", 0o755, b},
	} {
		_ = tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data))})
		_, _ = tw.Write(f.data)
	}
	_ = tw.Close()
	ref := fmt.Sprintf("mctl14b-bench-worker:%x", rand.Uint32())
	resp, err := cli.ImageBuild(ctx, &tb, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("built %s but: %v", ref, err)
	}
	return ref
}

func assertCleaned(t *testing.T, cli client.APIClient, kv KV, rep *Report) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if rep == nil {
		t.Fatal("no report")
	}
	if rep.Cleanup != "removed" {
		t.Errorf("cleanup: %s", rep.Cleanup)
	}
	if _, _, err := cli.ServiceInspectWithRaw(ctx, rep.Service, swarm.ServiceInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("service %s still there (err %v)", rep.Service, err)
	}
	// KV is checked once the workers are gone: one that wrote after the
	// cleanup would leave keys behind.
	defer func() {
		if keys, err := kv.Keys(ctx, rep.Prefix); err != nil || len(keys) != 0 {
			t.Errorf("KV under %s: %v %v", rep.Prefix, keys, err)
		}
	}()
	if rep.ServiceID == "" {
		return
	}
	// The node's agent removes the containers of a removed service's tasks
	// asynchronously (a running one after its stop grace period): give it
	// a while, on a loaded machine a long one.
	var left []container.Summary
	for range 240 {
		var err error
		left, err = cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+rep.ServiceID))})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, c := range left {
		t.Errorf("container %s of the removed service still there (%s)", c.Names, c.Status)
	}
}

// TestWorkersOnTheSwarm runs two workers as a real service on the test
// environment's swarm against a counting target on 127.0.0.1, then a run
// whose image does not exist, and checks both leave nothing behind.
func TestWorkersOnTheSwarm(t *testing.T) {
	cli := testenv.Manager(t)
	rc := testenv.Consul(t)
	kv := ConsulKV{C: rc}
	img := workerImage(t, cli)
	url, seen := countingTarget(t)
	env := []string{"CONSUL_HTTP_ADDR=" + api.DefaultConfig().Address}

	t.Run("two workers", func(t *testing.T) {
		plan, err := Divide(WorkerSpec{URL: url, Connections: 4, Rate: 101, Duration: 2 * time.Second, Timeout: 2 * time.Second, Loops: 1}, 2)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		rep, err := Run(ctx, cli, kv, plan, WithImage(img), WithEnv(env...), WithName("mctl14b-it"),
			WithProgress(func(e Event) { t.Logf("%s: %s", e.Step, e.Message) }))
		assertCleaned(t, cli, kv, rep)
		if err != nil {
			t.Fatal(err)
		}
		m := rep.Merged
		for i := 0; i < 100 && seen.Load() < int64(m.Sent); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if int64(m.Sent) != seen.Load() || m.Requests == 0 || m.Latency.Count != int64(m.Requests) {
			t.Errorf("merged %d answered, %d sent, histogram %d; the target saw %d", m.Requests, m.Sent, m.Latency.Count, seen.Load())
		}
		if len(rep.Workers) != 2 || rep.Workers[0].Task == "" || rep.Workers[0].Node == "" || rep.Workers[0].Connections != 2 {
			t.Errorf("workers %+v", rep.Workers)
		}
		if rep.Workers[0].Rate+rep.Workers[1].Rate != 101 {
			t.Errorf("rates %g + %g", rep.Workers[0].Rate, rep.Workers[1].Rate)
		}
		t.Logf("ready %.1fs, load from %.1fs; %d requests, %.1f/s", rep.ReadySeconds, rep.StartToLoadSeconds, m.Requests, m.RequestsPerSec)
	})

	t.Run("interrupted", func(t *testing.T) {
		plan, _ := Divide(WorkerSpec{URL: url, Connections: 2, Rate: 50, Duration: time.Minute, Timeout: time.Second}, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// Ctrl-C once the workers are running.
		rep, err := Run(ctx, cli, kv, plan, WithImage(img), WithEnv(env...), WithName("mctl14b-it"),
			WithProgress(func(e Event) {
				if e.Step == "started" {
					time.AfterFunc(time.Second, cancel)
				}
			}))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		assertCleaned(t, cli, kv, rep)
	})

	t.Run("missing image", func(t *testing.T) {
		plan, _ := Divide(WorkerSpec{URL: url, Connections: 2, Duration: time.Second}, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		rep, err := Run(ctx, cli, kv, plan, WithImage("mctl14b-no-such-image:none"), WithEnv(env...), WithName("mctl14b-it"),
			WithReadyTimeout(60*time.Second))
		if err == nil || !strings.Contains(err.Error(), "workers ready") {
			t.Errorf("err = %v", err)
		}
		t.Logf("error: %v", err)
		assertCleaned(t, cli, kv, rep)
	})
}
