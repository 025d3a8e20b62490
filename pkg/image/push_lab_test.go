//go:build linux

package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/netns"
	"github.com/microctl/microctl/internal/testenv"
)

// buildScratch builds a small image FROM scratch on the engine (no pull
// needed) and removes it when the test ends. The random content gives it
// an ID no other test shares.
func buildScratch(t *testing.T, cli client.APIClient, ref string) {
	t.Helper()
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	files := map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY payload /payload\n"),
		"payload":    bytes.Repeat([]byte(fmt.Sprintf("%016x", rand.Uint64())), 1<<14), // 256 KiB
	}
	for name, b := range files {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b))})
		_, _ = tw.Write(b)
	}
	_ = tw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := cli.ImageBuild(ctx, &ctxTar, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
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
}

// TestPushToLabEngines pushes an image from the test environment's engine
// to two fresh engines of the lab, then pushes again and sees both skipped
// (same ID), then removes the name on one and sees it tagged, not sent.
func TestPushToLabEngines(t *testing.T) {
	src := testenv.DockerChanges(t)
	if err := netns.Available(); err != nil {
		testenv.Missing(t, "no lab here: %v", err)
	}
	ref := fmt.Sprintf("mctl14b-push-test:%x", rand.Uint32())
	buildScratch(t, src, ref)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab, err := netns.New(ctx, netns.WithNodes(2), netns.WithLog(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	if err := lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var targets []Target
	for _, n := range lab.Nodes {
		opts, err := ClientOptions(n.Host)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.NewClientWithOpts(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		targets = append(targets, Target{Name: n.Name, URL: n.Host, Engine: c})
	}
	imgs, err := Resolve(ctx, src, []string{ref}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	res, err := Push(ctx, src, imgs, targets)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Images[0].Status != StatusSent || r.Bytes < 256<<10 {
			t.Errorf("first push, %s: %s, %d bytes", r.Target, r.Images[0].Status, r.Bytes)
		}
	}
	for _, tg := range targets {
		ins, err := tg.Engine.ImageInspect(ctx, ref)
		if err != nil || ins.ID != imgs[0].ID {
			t.Errorf("%s has %s %v, want %s", tg.Name, ins.ID, err, imgs[0].ID)
		}
	}

	res, err = Push(ctx, src, imgs, targets)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Images[0].Status != StatusPresent || r.Bytes != 0 {
			t.Errorf("second push, %s: %s, %d bytes", r.Target, r.Images[0].Status, r.Bytes)
		}
	}

	// n1 keeps the content under another name only.
	n1 := targets[0].Engine.(client.APIClient)
	if err := n1.ImageTag(ctx, ref, ref+"-other"); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err = Push(ctx, src, imgs, targets[:1])
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Images[0].Status != StatusTagged || res[0].Bytes != 0 {
		t.Errorf("third push: %s, %d bytes", res[0].Images[0].Status, res[0].Bytes)
	}
}

// TestPushAllNodesLab makes a two-node swarm of lab engines, puts an image
// on the manager (n1) only, then pushes it to every other node through
// NodeEngines' mapping, with {hostname} in a unix:// template (symlinks
// named after each node's hostname point at its engine's directory).
func TestPushAllNodesLab(t *testing.T) {
	src := testenv.DockerChanges(t)
	if err := netns.Available(); err != nil {
		testenv.Missing(t, "no lab here: %v", err)
	}
	ref := fmt.Sprintf("mctl14b-push-test:%x", rand.Uint32())
	buildScratch(t, src, ref)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab, err := netns.New(ctx, netns.WithNodes(2), netns.WithLog(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	if err := lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	links, err := os.MkdirTemp("", "mctl-hosts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(links) })
	clients := map[string]*client.Client{}
	for _, n := range lab.Nodes {
		if err := os.Symlink(n.Dir, filepath.Join(links, n.Hostname)); err != nil {
			t.Fatal(err)
		}
		c, err := client.NewClientWithOpts(client.WithHost(n.Host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[n.Name] = c
	}
	n1, n2 := clients["n1"], clients["n2"]
	addr1 := lab.Nodes[0].Addr.String()
	if _, err := n1.SwarmInit(ctx, swarm.InitRequest{ListenAddr: addr1 + ":2377", AdvertiseAddr: addr1}); err != nil {
		t.Fatal(err)
	}
	sw, err := n1.SwarmInspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addr2 := lab.Nodes[1].Addr.String()
	if err := n2.SwarmJoin(ctx, swarm.JoinRequest{ListenAddr: addr2 + ":2377", AdvertiseAddr: addr2,
		RemoteAddrs: []string{addr1 + ":2377"}, JoinToken: sw.JoinTokens.Worker}); err != nil {
		t.Fatal(err)
	}

	// The image reaches the manager first, the way a user would get it
	// onto the machine they deploy from.
	imgs, err := Resolve(ctx, src, []string{ref}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Push(ctx, src, imgs, []Target{{Name: "n1", Engine: n1}}); err != nil {
		t.Fatal(err)
	}

	var nodes []NodeEngine
	for range 40 { // the worker shows up in the node list once it has joined
		nodes, err = NodeEngines(ctx, n1, "unix://"+links+"/{hostname}/docker.sock")
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 2 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	var targets []Target
	for _, ne := range nodes {
		if ne.Self {
			continue
		}
		opts, err := ClientOptions(ne.URL)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.NewClientWithOpts(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		targets = append(targets, Target{Name: ne.Hostname, URL: ne.URL, Engine: c})
	}
	if len(targets) != 1 || targets[0].Name != lab.Nodes[1].Hostname {
		t.Fatalf("targets %+v, want only %s", targets, lab.Nodes[1].Hostname)
	}
	mimgs, err := Resolve(ctx, n1, []string{ref}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Push(ctx, n1, mimgs, targets)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Images[0].Status != StatusSent {
		t.Errorf("n2: %s", res[0].Images[0].Status)
	}
	if ins, err := n2.ImageInspect(ctx, ref); err != nil || ins.ID != imgs[0].ID {
		t.Errorf("n2 has %s %v, want %s", ins.ID, err, imgs[0].ID)
	}
}
