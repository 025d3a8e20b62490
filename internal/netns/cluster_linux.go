//go:build linux

package netns

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/docker/docker/client"
)

// OverlaySubnet is the subnet of the cluster lab's `micro` overlay. It
// lives only in the lab's engines.
const OverlaySubnet = "10.248.0.0/24"

// FormSwarm makes n1 a manager, the next managers-1 nodes managers too and
// the others workers, with the microctl binary at bin (`microctl swarm
// init/join`, as a person would), and the `micro` overlay. Both commands
// are no-ops on a node already in the swarm (a worker stays a worker), so
// FormSwarm can run again on a formed lab.
func (l *Lab) FormSwarm(ctx context.Context, bin string, managers int) error {
	n1 := l.Nodes[0]
	if _, err := l.microctl(ctx, bin, n1, "swarm", "init", "--advertise-addr", n1.Addr.String(),
		"--network", "micro:"+OverlaySubnet); err != nil {
		return err
	}
	tokens := map[string]string{}
	for _, role := range []string{"worker", "manager"} {
		t, err := l.microctl(ctx, bin, n1, "swarm", "token", role, "-q")
		if err != nil {
			return err
		}
		tokens[role] = strings.TrimSpace(t)
	}
	for i, n := range l.Nodes[1:] {
		role := "worker"
		if i+2 <= managers {
			role = "manager"
		}
		if _, err := l.microctl(ctx, bin, n, "swarm", "join", "--token", tokens[role],
			"--advertise-addr", n.Addr.String(), n1.Addr.String()); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) microctl(ctx context.Context, bin string, n *Node, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+n.Host)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	l.log("netns: %s: microctl %s: %s", n.Name, strings.Join(args, " "), strings.TrimSpace(out.String()+errb.String()))
	if err != nil {
		return "", fmt.Errorf("%s: microctl %s: %v: %s", n.Name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// LoadImages copies images from the engine src to every node that lacks
// them (or has another image under the name), as `docker save | docker -H
// NODE load` would: Swarm nodes pull from a registry, and the lab has
// none. It returns one line per copy made.
//
// TODO: `microctl image push --all-nodes` (issue 14, section 2) does this
// for any swarm; use it here once it exists.
func (l *Lab) LoadImages(ctx context.Context, src client.APIClient, images []string) ([]string, error) {
	want := map[string]string{} // image -> ID on src
	for _, img := range images {
		ii, err := src.ImageInspect(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("image %s on the local engine: %w (run: make images)", img, err)
		}
		want[img] = ii.ID
	}
	var (
		mu    sync.Mutex
		done  []string
		errs  = make([]error, len(l.Nodes))
		wg    sync.WaitGroup
		saves sync.Mutex // one save at a time: they compete for the same disk
	)
	for i, n := range l.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst, err := client.NewClientWithOpts(client.WithHost(n.Host), client.WithAPIVersionNegotiation())
			if err != nil {
				errs[i] = err
				return
			}
			defer dst.Close()
			var missing []string
			for _, img := range images {
				if ii, err := dst.ImageInspect(ctx, img); err != nil || ii.ID != want[img] {
					missing = append(missing, img)
				}
			}
			if len(missing) == 0 {
				return
			}
			saves.Lock()
			defer saves.Unlock()
			rc, err := src.ImageSave(ctx, missing)
			if err != nil {
				errs[i] = fmt.Errorf("%s: save %s: %w", n.Name, strings.Join(missing, " "), err)
				return
			}
			defer rc.Close()
			resp, err := dst.ImageLoad(ctx, rc, client.ImageLoadWithQuiet(true))
			if err != nil {
				errs[i] = fmt.Errorf("%s: load %s: %w", n.Name, strings.Join(missing, " "), err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			done = append(done, fmt.Sprintf("%s: %s", n.Name, strings.Join(missing, " ")))
			mu.Unlock()
			l.log("netns: %s: loaded %s", n.Name, strings.Join(missing, " "))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return done, err
		}
	}
	return done, nil
}
