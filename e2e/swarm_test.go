package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/netns"
	"github.com/microctl/microctl/internal/testenv"
	pkgswarm "github.com/microctl/microctl/pkg/swarm"
)

// The JSON shapes the tests read, from docs/swarm.md.
type statusJSON struct {
	SwarmID string `json:"swarm_id"`
	Role    string `json:"role"`
	Nodes   []struct {
		ID, Hostname, Role, State, Availability string
		ManagerReachability                     string `json:"manager_reachability"`
		Self                                    bool
	} `json:"nodes"`
	Networks []struct {
		Name    string
		Subnets []struct{ Subnet string }
	} `json:"networks"`
	Healthy  bool     `json:"healthy"`
	Problems []string `json:"problems"`
}

type networkJSON struct {
	Name       string
	ID         string
	Driver     string
	Scope      string
	Subnets    []struct{ Subnet, Gateway string }
	Attachable bool
	Encrypted  bool
	Internal   bool
	Services   []string
	Peers      []struct{ Name, IP string }
	Created    *bool `json:"created"`
}

type initJSON struct {
	Initialised bool              `json:"initialised"`
	ManagerAddr string            `json:"manager_addr"`
	Networks    []networkJSON     `json:"networks"`
	JoinTokens  map[string]string `json:"join_tokens"`
}

// labTask is a running task of the lab's service.
type labTask struct {
	node, ip string
	pid      int
}

func decode[T any](t *testing.T, r Result) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		t.Fatalf("invalid JSON (%v), exit %d:\n%s\n%s", err, r.Code, r.Stdout, r.Stderr)
	}
	return v
}

func oneLine(t *testing.T, r Result, code int, want string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
	if strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 || !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr %q, want one line containing %q", r.Stderr, want)
	}
	if strings.Contains(r.Stderr+r.Stdout, "goroutine ") {
		t.Error("printed a stack trace")
	}
}

// TestSwarmCommandsOnSharedEngine runs the built binary against the shared
// single-node manager: init (twice) with a network of its own, status,
// network create/ls/inspect/rm, and the refusals. It never leaves the swarm.
func TestSwarmCommandsOnSharedEngine(t *testing.T) {
	cli := testenv.Manager(t)
	name := testenv.UniqueName("e2e3")
	subnet := testenv.FreeSubnet(t, cli)
	t.Cleanup(func() { microctl(t, nil, "network", "rm", name) })

	// init on a manager: reports the swarm, creates the network; twice: no-op.
	r := microctl(t, nil, "swarm", "init", "--network", name+":"+subnet, "--encrypted", "-o", "json")
	init1 := decode[initJSON](t, r)
	if r.Code != 0 || init1.Initialised || len(init1.Networks) != 1 || init1.Networks[0].Created == nil || !*init1.Networks[0].Created ||
		!init1.Networks[0].Encrypted || init1.Networks[0].Subnets[0].Subnet != subnet || !strings.HasPrefix(init1.JoinTokens["worker"], "SWMTKN-1-") {
		t.Fatalf("first init: exit %d %+v\n%s", r.Code, init1, r.Stderr)
	}
	r = microctl(t, nil, "swarm", "init", "--network", name+":"+subnet, "--encrypted")
	if r.Code != 0 || !strings.Contains(r.Stdout, "nothing to initialise") || !strings.Contains(r.Stdout, "Network "+name+": already there") {
		t.Errorf("second init: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// As docker network inspect sees it.
	n, err := cli.NetworkInspect(context.Background(), name, network.InspectOptions{})
	if err != nil || !n.Attachable || !pkgswarm.IsEncrypted(n) || n.IPAM.Config[0].Subnet != subnet || n.Driver != "overlay" || n.Scope != "swarm" {
		t.Errorf("engine sees %+v (%v)", n, err)
	}

	// The same name with other settings: one line naming each difference.
	other := testenv.FreeSubnet(t, cli)
	oneLine(t, microctl(t, nil, "network", "create", name, "--subnet", other), 1,
		"error: network "+name+" already exists with different settings: subnet is "+subnet+", want "+other+"; encrypted is true, want false")
	// Identical: exit 0, nothing done.
	r = microctl(t, nil, "network", "create", name, "--subnet", subnet, "--encrypted", "-o", "json")
	if nj := decode[networkJSON](t, r); r.Code != 0 || nj.Created == nil || *nj.Created {
		t.Errorf("identical create: exit %d %+v", r.Code, nj)
	}
	// Overlapping another network's subnet.
	half := netip.PrefixFrom(netip.MustParsePrefix(subnet).Addr(), 25).String()
	oneLine(t, microctl(t, nil, "network", "create", name+"-b", "--subnet", half), 1,
		"overlaps "+subnet+" of network "+name)

	// status, ls, inspect.
	r = microctl(t, nil, "swarm", "status", "-o", "json")
	st := decode[statusJSON](t, r)
	if r.Code != 0 || !st.Healthy || st.Role != "manager" || len(st.Nodes) < 1 {
		t.Errorf("status: exit %d %+v", r.Code, st)
	}
	r = microctl(t, nil, "network", "ls", "-o", "json")
	found := false
	for _, x := range decode[[]networkJSON](t, r) {
		found = found || x.Name == name && x.Encrypted && x.Attachable
	}
	if !found {
		t.Errorf("ls does not list %s:\n%s", name, r.Stdout)
	}
	r = microctl(t, nil, "network", "inspect", name)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Encrypted:   yes") || !strings.Contains(r.Stdout, subnet) {
		t.Errorf("inspect: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}

	// rm, then rm again: gone.
	r = microctl(t, nil, "network", "rm", name)
	if r.Code != 0 {
		t.Errorf("rm: exit %d %s", r.Code, r.Stderr)
	}
	oneLine(t, microctl(t, nil, "network", "rm", name), 1, "error: no network named "+name)
}

func TestSwarmBadInput(t *testing.T) {
	testenv.Docker(t)
	dead := "unix://" + t.TempDir() + "/no.sock"
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"swarm", "init", "--network", "micro:10.10.0.1/24"}, 2, "invalid CIDR \"10.10.0.1/24\": not a network address (did you mean 10.10.0.0/24?)"},
		{[]string{"swarm", "init", "--network", "micro:banana"}, 2, "invalid CIDR \"banana\""},
		{[]string{"swarm", "init", "--advertise-addr", "nosuchif0"}, 2, "--advertise-addr nosuchif0: no such interface or IP address (interfaces here: "},
		{[]string{"swarm", "init", "--no-network", "--network", "x"}, 2, "--no-network and --network exclude each other"},
		{[]string{"network", "create", "x", "--subnet", "10.0.0.0/33"}, 2, "invalid CIDR"},
		{[]string{"network", "create", "x", "--subnet", "10.1.0.0/24", "--gateway", "10.2.0.1"}, 2, "gateway 10.2.0.1 is in none of the subnets (10.1.0.0/24)"},
		{[]string{"swarm", "token", "admin"}, 2, "invalid role \"admin\": want worker or manager"},
		{[]string{"swarm", "join", "10.0.0.1"}, 2, "--token is required"},
		{[]string{"swarm", "join", "--token", "nope", "10.0.0.1"}, 2, "invalid join token"},
		{[]string{"swarm", "frob"}, 2, "unknown command \"frob\" for \"microctl swarm\""},
		{[]string{"--docker-host", dead, "swarm", "status"}, 1, "error: cannot reach the Docker Engine at " + dead + ": connection failed"},
		{[]string{"--docker-host", dead, "swarm", "init"}, 1, "error: cannot reach the Docker Engine at " + dead},
		{[]string{"--docker-host", dead, "network", "create", "x"}, 1, "error: cannot reach the Docker Engine at " + dead},
		{[]string{"--docker-host", dead, "swarm", "leave"}, 1, "error: cannot reach the Docker Engine at " + dead},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			oneLine(t, microctl(t, nil, tt.args...), tt.code, tt.want)
		})
	}
}

// TestSwarmMultiNode builds a three-engine swarm in network namespaces the
// test makes itself (internal/netns), entirely apart from the shared
// engine: init on n1, join n2 and n3 with the built binary, status shows
// three ready nodes, a global service on the overlay runs a task on each
// node, each node sees the others as peers of the network, and an HTTP
// request crosses the overlay (VXLAN) from a container on n1 to the tasks
// on n2 and n3. Then the guards: network rm refused while the service uses
// it, leave refused on the last manager with what it would destroy, a
// worker leaves and status exits 3.
func TestSwarmMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three Docker Engines (-short)")
	}
	if os.Getenv("MICROCTL_IT_DOCKER") != "1" {
		t.Skip("starts Docker Engines in network namespaces: set MICROCTL_IT_DOCKER=1 to run")
	}
	if err := netns.Available(); err != nil {
		t.Skipf("no namespace lab here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if swept, err := netns.Sweep(); len(swept) > 0 || err != nil {
		t.Logf("swept labs of dead test runs: %v (%v)", swept, err)
	}
	start := time.Now()
	lab, err := netns.New(ctx, netns.WithNodes(3), netns.WithLog(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	if err := lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n1, n2, n3 := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]
	on := func(n *netns.Node) []string { return []string{"DOCKER_HOST=" + n.Host} }
	clients := map[string]client.APIClient{}
	for _, n := range lab.Nodes {
		c, err := client.NewClientWithOpts(client.WithHost(n.Host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients[n.Name] = c
	}
	t.Logf("three engines up after %s", time.Since(start).Round(time.Millisecond))

	// init, twice.
	r := microctl(t, on(n1), "swarm", "init", "--advertise-addr", n1.Addr.String(), "--network", "micro:10.248.0.0/24", "-o", "json")
	in := decode[initJSON](t, r)
	if r.Code != 0 || !in.Initialised || in.ManagerAddr != n1.Addr.String()+":2377" || len(in.Networks) != 1 || !*in.Networks[0].Created {
		t.Fatalf("init: exit %d %+v\n%s", r.Code, in, r.Stderr)
	}
	r = microctl(t, on(n1), "swarm", "init", "--network", "micro:10.248.0.0/24", "-o", "json")
	if in2 := decode[initJSON](t, r); r.Code != 0 || in2.Initialised || *in2.Networks[0].Created {
		t.Fatalf("second init is not a no-op: exit %d %+v", r.Code, in2)
	}
	r = microctl(t, on(n1), "swarm", "token", "worker", "-q")
	token := strings.TrimSpace(r.Stdout)
	if r.Code != 0 || token != in.JoinTokens["worker"] {
		t.Fatalf("token: exit %d %q, want %q", r.Code, token, in.JoinTokens["worker"])
	}

	// join: n2 names its interface (resolved by its own daemon, in its own
	// namespace), n3 its address; joining again is a no-op.
	r = microctl(t, on(n2), "swarm", "join", "--token", token, "--advertise-addr", "eth0", n1.Addr.String())
	if r.Code != 0 || !strings.Contains(r.Stdout, "joined the swarm at "+n1.Addr.String()+":2377 as a worker") {
		t.Fatalf("join n2: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = microctl(t, on(n3), "swarm", "join", "--token", token, "--advertise-addr", n3.Addr.String(), n1.Addr.String()+":2377")
	if r.Code != 0 {
		t.Fatalf("join n3: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	r = microctl(t, on(n3), "swarm", "join", "--token", token, n1.Addr.String())
	if r.Code != 0 || !strings.Contains(r.Stdout, "already a worker") {
		t.Errorf("join n3 again: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	oneLine(t, microctl(t, on(n2), "swarm", "status"), 1, "is a swarm worker, not a manager")

	// status: three ready nodes (a joined node reports ready within a
	// heartbeat or two).
	var st statusJSON
	deadline := time.Now().Add(60 * time.Second)
	for {
		r = microctl(t, on(n1), "swarm", "status", "-o", "json")
		st = decode[statusJSON](t, r)
		if r.Code == 0 && st.Healthy && len(st.Nodes) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r.Code != 0 || !st.Healthy || len(st.Nodes) != 3 {
		t.Fatalf("status: exit %d %+v", r.Code, st)
	}
	hosts := map[string]string{} // hostname -> node ID
	for _, n := range st.Nodes {
		if n.State != "ready" || n.Availability != "active" {
			t.Errorf("node %+v", n)
		}
		hosts[n.Hostname] = n.ID
	}
	for _, n := range lab.Nodes {
		if hosts[n.Hostname] == "" {
			t.Errorf("status lacks %s: %+v", n.Hostname, st.Nodes)
		}
	}
	r = microctl(t, on(n1), "swarm", "status")
	t.Logf("microctl swarm status on n1:\n%s", r.Stdout)

	// A global service on the overlay: one task per node. The image is
	// imported into each engine from the greeter binary: nothing pulled.
	greeter := binary(t, "examples/greeter")
	for _, n := range lab.Nodes {
		importImage(t, ctx, clients[n.Name], greeter)
	}
	svc, err := clients["n1"].ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: "lab-greeter"},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: "microctl/greeter:lab", Env: []string{"GREETER_NO_REGISTER=1"}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "micro"}},
		},
		Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}},
		// DNS round robin: the VIP mode needs IPVS, which this kernel lacks.
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tasks map[string]labTask // by lab node name
	deadline = time.Now().Add(90 * time.Second)
	for {
		tasks = runningTasks(t, ctx, clients, svc.ID)
		if len(tasks) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(tasks) != 3 {
		list, _ := clients["n1"].TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
		for _, tk := range list {
			t.Logf("task on %s: %s %s %s", tk.NodeID, tk.Status.State, tk.Status.Message, tk.Status.Err)
		}
		t.Fatalf("%d of 3 tasks running", len(tasks))
	}

	// Each node sees the network with all three as peers.
	for _, n := range lab.Nodes {
		var nj networkJSON
		deadline = time.Now().Add(30 * time.Second)
		for {
			r = microctl(t, on(n), "network", "inspect", "micro", "-o", "json")
			nj = decode[networkJSON](t, r)
			if len(nj.Peers) == 3 || time.Now().After(deadline) {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		if r.Code != 0 || len(nj.Peers) != 3 || nj.Subnets[0].Subnet != "10.248.0.0/24" {
			t.Errorf("%s: network inspect: exit %d %+v", n.Name, r.Code, nj)
		}
	}

	// Traffic crosses the overlay: from the container on n1 to the tasks on
	// n2 and n3, by their overlay addresses.
	from := tasks["n1"]
	for _, to := range []string{"n2", "n3"} {
		addr := tasks[to].ip + ":8080"
		var status, body string
		err := netns.RunIn(fmt.Sprintf("/proc/%d/ns/net", from.pid), func() error {
			var err error
			status, body, err = netns.HTTPGet(addr, "/", 5*time.Second)
			return err
		})
		if err != nil || !strings.Contains(status, "200") || !strings.HasPrefix(body, "Hello from ") {
			t.Errorf("GET http://%s/ from the task on n1 (%s): %q %q %v", addr, from.ip, status, body, err)
		} else {
			t.Logf("n1 (%s) -> %s (%s): %s", from.ip, to, addr, strings.TrimSpace(body))
		}
	}

	// Guards.
	oneLine(t, microctl(t, on(n1), "network", "rm", "micro"), 1, "error: network micro is in use by 1 service: lab-greeter")
	r = microctl(t, on(n1), "swarm", "leave")
	oneLine(t, r, 1, "error: this node is the last manager of the swarm: leaving destroys the swarm and everything in it: 1 service (lab-greeter), 1 network (micro), 0 configs, 0 secrets; 2 other nodes lose their swarm (microctl swarm leave --force destroys it anyway)")

	// A worker leaves: the manager then reports it down, exit 3.
	r = microctl(t, on(n3), "swarm", "leave")
	if r.Code != 0 || !strings.Contains(r.Stdout, "left the swarm") {
		t.Fatalf("n3 leave: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		r = microctl(t, on(n1), "swarm", "status")
		if r.Code == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	want := fmt.Sprintf("swarm unhealthy: 1 problem: node %s (%s) is down", n3.Hostname, hosts[n3.Hostname][:12])
	if r.Code != 3 || !strings.Contains(r.Stderr, want) || !strings.Contains(r.Stdout, "problem: node "+n3.Hostname) {
		t.Errorf("status after a worker left: exit %d, want 3 and %q\n%s%s", r.Code, want, r.Stdout, r.Stderr)
	}
	// The last manager leaves with --force; afterwards there is no swarm.
	r = microctl(t, on(n1), "swarm", "leave", "--force")
	if r.Code != 0 || !strings.Contains(r.Stdout, "It was its last manager") {
		t.Errorf("leave --force: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	oneLine(t, microctl(t, on(n1), "swarm", "status"), 1, "is not part of a swarm (run: microctl swarm init)")
	t.Logf("multi-node test body took %s", time.Since(start).Round(time.Millisecond))
}

// importImage makes image microctl/greeter:lab in an engine from the static
// greeter binary, with `docker import` semantics: no registry involved.
func importImage(t *testing.T, ctx context.Context, cli client.APIClient, bin string) {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "greeter", Mode: 0o755, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tw.Write(b)
	tw.Close()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, "microctl/greeter:lab",
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/greeter"]`}})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
}

// runningTasks maps lab node names to the service's running tasks there:
// overlay address and the container's pid (for entering its namespace).
func runningTasks(t *testing.T, ctx context.Context, clients map[string]client.APIClient, serviceID string) map[string]labTask {
	t.Helper()
	byNodeID := map[string]string{}
	for name, c := range clients {
		if info, err := c.Info(ctx); err == nil {
			byNodeID[info.Swarm.NodeID] = name
		}
	}
	list, err := clients["n1"].TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", serviceID), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]labTask{}
	for _, tk := range list {
		name := byNodeID[tk.NodeID]
		if tk.Status.State != swarm.TaskStateRunning || name == "" || tk.Status.ContainerStatus == nil {
			continue
		}
		var ip string
		for _, na := range tk.NetworksAttachments {
			if na.Network.Spec.Name == "micro" && len(na.Addresses) > 0 {
				ip = strings.Split(na.Addresses[0], "/")[0]
			}
		}
		ci, err := clients[name].ContainerInspect(ctx, tk.Status.ContainerStatus.ContainerID)
		if err != nil || ci.State == nil || ci.State.Pid == 0 || ip == "" {
			continue
		}
		out[name] = labTask{node: name, ip: ip, pid: ci.State.Pid}
	}
	return out
}
