package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/microctl/microctl/internal/testenv"
)

// clusterImages are what the cluster stack runs, plus microctl itself
// (run in a container on the overlay to reach other nodes' agents), with
// the tag examples/cluster/stack.yml takes (MICROCTL_IMAGE_TAG, default dev).
func clusterImages() []string {
	tag := os.Getenv("MICROCTL_IMAGE_TAG")
	if tag == "" {
		tag = "dev"
	}
	var out []string
	for _, n := range []string{"consul", "greeter", "gateway", "microctl"} {
		out = append(out, "microctl/"+n+":"+tag)
	}
	return out
}

// healthJSON is the part of `microctl health -o json` the tests read.
type healthJSON struct {
	Instances []struct {
		Instance, Node, Status, Address string
	} `json:"instances"`
}

// mc runs microctl with a bound of its own (a deploy of three Consul
// servers on a loaded machine takes longer than microctl()'s 2 minutes).
func mc(t *testing.T, within time.Duration, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t, "."), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("microctl %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// greeterHealth polls `microctl health` until ok accepts what it shows.
func greeterHealth(t *testing.T, env []string, within time.Duration, ok func(healthJSON) bool) (healthJSON, Result) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r := microctl(t, env, "health", "go.micro.srv.greeter", "-o", "json")
		var h healthJSON
		_ = json.Unmarshal([]byte(r.Stdout), &h)
		if ok(h) || time.Now().After(deadline) {
			return h, r
		}
		time.Sleep(2 * time.Second)
	}
}

// lostInstance polls health right after a fault until n3's instance is
// critical or gone, and says which it saw. Consul may go straight to gone:
// autopilot removes a failed server, and its node's services with it,
// within seconds on a loaded machine.
func lostInstance(t *testing.T, e []string) string {
	t.Helper()
	h, r := greeterHealth(t, e, time.Minute, func(h healthJSON) bool {
		s := byNode(h)["consul-n3"]
		return len(h.Instances) > 0 && (len(s) == 0 || s[0] == "critical")
	})
	switch s := byNode(h)["consul-n3"]; {
	case len(s) == 0 && len(h.Instances) > 0:
		return "gone"
	case len(s) == 1 && s[0] == "critical" && r.Code == 3:
		return "critical"
	}
	t.Errorf("n3's instance neither critical nor gone within a minute: %v, exit %d\n%s", byNode(h), r.Code, r.Stderr)
	return ""
}

func byNode(h healthJSON) map[string][]string {
	m := map[string][]string{}
	for _, i := range h.Instances {
		m[i.Node] = append(m[i.Node], i.Status)
	}
	return m
}

// greeterTasks maps the running greeter tasks to their nodes' hostnames.
func greeterTasks(t *testing.T, cli client.APIClient) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nodes, err := cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host := map[string]string{}
	for _, n := range nodes {
		host[n.ID] = n.Description.Hostname
	}
	tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", "cluster_greeter"), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, tk := range tasks {
		if tk.Status.State == swarm.TaskStateRunning {
			m[host[tk.NodeID]]++
		}
	}
	return m
}

// TestClusterNodeLoss deploys examples/cluster/stack.yml on the lab (a
// Consul server per node, greeters registered with their own node's agent)
// and stops n3 (its engine and containers killed): swarm status exits 3
// naming n3; the instance n3's agent owned shows critical; greeter is back
// to 3 running tasks on n1 and n2, and passing; registry prune takes the
// lost node's orphan out (its agent is gone: through the catalog). n3
// back: the swarm is whole and no critical instance is left. Then
// `registry deregister` of an instance owned by another node's agent, run
// where microctl can reach that agent: in a container on the overlay.
func TestClusterNodeLoss(t *testing.T) {
	lab := requireClusterLab(t)
	host, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	images := clusterImages()
	for _, img := range images {
		if _, err := host.ImageInspect(context.Background(), img); err != nil {
			testenv.Missing(t, "image %s is missing on the local engine (run make images)", img)
		}
	}
	if r := lab.run("up", "--images", strings.Join(images, ",")); r.Code != 0 {
		t.Fatalf("up: exit %d\n%s", r.Code, r.Stderr)
	}
	env := lab.env()
	e := []string{"DOCKER_HOST=" + env["DOCKER_HOST"], "CONSUL_HTTP_ADDR=" + env["CONSUL_HTTP_ADDR"]}
	n1, err := client.NewClientWithOpts(client.WithHost(env["DOCKER_HOST"]), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer n1.Close()

	start := time.Now()
	r := mc(t, 8*time.Minute, e, "deploy", "-f", filepath.Join(testenv.RepoRoot(t), "examples/cluster/stack.yml"), "--timeout", "6m")
	if r.Code != 0 {
		t.Fatalf("deploy: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	t.Logf("deployed in %s", time.Since(start).Round(time.Second))
	// One greeter per node (Swarm spreads a service's tasks), each owned by
	// its node's agent.
	h, r := greeterHealth(t, e, time.Minute, func(h healthJSON) bool {
		m := byNode(h)
		return len(h.Instances) == 3 && len(m["consul-n1"]) == 1 && len(m["consul-n2"]) == 1 && len(m["consul-n3"]) == 1
	})
	if len(h.Instances) != 3 || len(byNode(h)) != 3 {
		t.Fatalf("greeters not one per agent: %v (exit %d)\n%s", byNode(h), r.Code, r.Stderr)
	}
	if r := microctl(t, e, "health", "go.micro.srv.greeter"); r.Code != 0 {
		t.Fatalf("health before: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// n3 stops.
	if r := lab.run("stop-node", "n3"); r.Code != 0 {
		t.Fatalf("stop-node: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("n3's greeter in Consul after the stop: %s", lostInstance(t, e))
	r = waitSwarm(t, e, 3, time.Minute)
	if r.Code != 3 || !regexp.MustCompile(`node n3 \(\w+\) is down`).MatchString(r.Stderr) {
		t.Errorf("swarm status: exit %d, want 3 naming n3\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// Back to desired on the remaining nodes, and passing there.
	deadline := time.Now().Add(2 * time.Minute)
	var tasks map[string]int
	for {
		tasks = greeterTasks(t, n1)
		if tasks["n1"]+tasks["n2"] == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if tasks["n1"]+tasks["n2"] != 3 || tasks["n3"] != 0 {
		t.Fatalf("greeter tasks by node after n3 stopped: %v, want 3 on n1 and n2", tasks)
	}
	h, _ = greeterHealth(t, e, time.Minute, func(h healthJSON) bool {
		passing := 0
		for _, i := range h.Instances {
			if i.Status == "passing" && i.Node != "consul-n3" {
				passing++
			}
		}
		return passing == 3
	})
	t.Logf("after n3 stopped: greeter tasks %v, instances by agent %v", tasks, byNode(h))
	// The orphan: its agent is gone, so prune removes it from the catalog.
	r = microctl(t, e, "registry", "prune", "--critical-for", "0", "--service", "go.micro.srv.greeter", "--catalog-fallback", "--yes")
	t.Logf("registry prune: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Errorf("prune: exit %d", r.Code)
	}
	h, r = greeterHealth(t, e, 10*time.Second, func(h healthJSON) bool { return len(byNode(h)["consul-n3"]) == 0 })
	if len(byNode(h)["consul-n3"]) != 0 || r.Code != 0 {
		t.Errorf("after prune: %v, exit %d\n%s", byNode(h), r.Code, r.Stderr)
	}

	// n3 back: whole again, and nothing critical left (n3's agent comes
	// back with its old state, the dead greeter's registration included;
	// prune or the agent's own reaper takes it out).
	if r := lab.run("start-node", "n3"); r.Code != 0 {
		t.Fatalf("start-node: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := waitSwarm(t, e, 0, 2*time.Minute); r.Code != 0 {
		t.Errorf("swarm status after start-node: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	h, r = greeterHealth(t, e, 3*time.Minute, func(h healthJSON) bool {
		if len(h.Instances) != 3 {
			return false
		}
		for _, i := range h.Instances {
			if i.Status != "passing" {
				return false
			}
		}
		return true
	})
	if len(h.Instances) != 3 || r.Code != 0 {
		t.Errorf("after start-node: %v, exit %d\n%s", byNode(h), r.Code, r.Stderr)
	}

	// registry deregister, run on n1 against n1's agent, of an instance
	// that n2's agent owns: microctl goes to n2's agent (on the overlay,
	// which only a container reaches).
	var target string
	for _, i := range h.Instances {
		if i.Node == "consul-n2" {
			target = i.Instance
		}
	}
	if target == "" {
		t.Fatalf("no instance owned by consul-n2: %v", byNode(h))
	}
	out, code := runOnOverlay(t, n1, images[3], "CONSUL_HTTP_ADDR=consul-n1:8500", "registry", "deregister", target, "--yes")
	t.Logf("registry deregister %s (in a container on n1): exit %d\n%s", target, code, out)
	if code != 0 {
		t.Errorf("deregister: exit %d", code)
	}
	if r := microctl(t, e, "health", "go.micro.srv.greeter", "-o", "json"); strings.Contains(r.Stdout, target) {
		// go-micro registers it again at its next heartbeat (5 s), so only
		// a look right after shows it gone.
		t.Logf("note: %s listed again (re-registered by its greeter?)", target)
	}

	partitionNode(t, lab, e, n1)
}

// partitionNode cuts n3 off (its containers keep running, isolated) on a
// whole cluster with one greeter per node, then heals it: swarm status
// exits 3 naming n3, the greeter of n3 is critical and replaced on n1 and
// n2, prune takes the orphan out, and after the heal no stale
// registration is left (Swarm stops the isolated task, which deregisters).
func partitionNode(t *testing.T, lab *clusterLab, e []string, n1 client.APIClient) {
	// One greeter per node again: Swarm does not move tasks back by itself.
	if r := mc(t, 3*time.Minute, e, "deploy", "-f", filepath.Join(testenv.RepoRoot(t), "examples/cluster/stack.yml"), "--timeout", "2m"); r.Code != 0 {
		t.Fatalf("deploy before the partition: exit %d\n%s", r.Code, r.Stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	svc, _, err := n1.ServiceInspectWithRaw(ctx, "cluster_greeter", swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.TaskTemplate.ForceUpdate++
	if _, err := n1.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h, _ := greeterHealth(t, e, 2*time.Minute, func(h healthJSON) bool {
		m := byNode(h)
		return len(h.Instances) == 3 && len(m["consul-n3"]) == 1 && m["consul-n3"][0] == "passing" && len(m["consul-n1"]) == 1 && len(m["consul-n2"]) == 1
	})
	if len(byNode(h)["consul-n3"]) != 1 {
		t.Fatalf("no greeter on n3 before the partition: %v", byNode(h))
	}

	if r := lab.run("partition-node", "n3"); r.Code != 0 {
		t.Fatalf("partition-node: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("n3's greeter in Consul after the partition: %s", lostInstance(t, e))
	r := waitSwarm(t, e, 3, time.Minute)
	if r.Code != 3 || !regexp.MustCompile(`node n3 \(\w+\) is down`).MatchString(r.Stderr) {
		t.Errorf("swarm status (partition): exit %d, want 3 naming n3\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	deadline := time.Now().Add(2 * time.Minute)
	var tasks map[string]int
	for {
		tasks = greeterTasks(t, n1)
		if tasks["n1"]+tasks["n2"] == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if tasks["n1"]+tasks["n2"] != 3 {
		t.Errorf("partition: greeter tasks on n1 and n2: %v, want 3", tasks)
	}
	r = microctl(t, e, "registry", "prune", "--critical-for", "0", "--service", "go.micro.srv.greeter", "--catalog-fallback", "--yes")
	t.Logf("registry prune (partition): exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Errorf("prune (partition): exit %d", r.Code)
	}
	if r := lab.run("heal-node", "n3"); r.Code != 0 {
		t.Fatalf("heal-node: exit %d\n%s", r.Code, r.Stderr)
	}
	if r := waitSwarm(t, e, 0, 2*time.Minute); r.Code != 0 {
		t.Errorf("swarm status after heal: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	h, r = greeterHealth(t, e, 3*time.Minute, func(h healthJSON) bool {
		if len(h.Instances) != 3 {
			return false
		}
		for _, i := range h.Instances {
			if i.Status != "passing" || i.Node == "consul-n3" {
				return false
			}
		}
		return true
	})
	if len(h.Instances) != 3 || r.Code != 0 || len(byNode(h)["consul-n3"]) != 0 {
		t.Errorf("after heal: %v, exit %d, want 3 passing on n1 and n2 and nothing left on n3\n%s", byNode(h), r.Code, r.Stderr)
	}
}

// runOnOverlay runs microctl in a container on the lab's micro overlay, on
// the engine cli, and returns its output and exit code.
func runOnOverlay(t *testing.T, cli client.APIClient, image, env string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: args, Env: []string{env}},
		&container.HostConfig{NetworkMode: "micro"}, &network.NetworkingConfig{}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitc, errc := cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	var code int
	select {
	case w := <-waitc:
		code = int(w.StatusCode)
	case err := <-errc:
		t.Fatal(err)
	}
	logs, err := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var b bytes.Buffer
	_, _ = stdcopy.StdCopy(&b, &b, logs)
	return b.String(), code
}
