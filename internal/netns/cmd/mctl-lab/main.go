//go:build linux

// Command mctl-lab runs the cluster lab of scripts/cluster.sh: three Docker
// Engines in network namespaces (internal/netns), a swarm of them formed
// with microctl, the project's images on every node, and a forwarder on
// 127.0.0.1 into the lab so that microctl, outside the namespaces, reaches
// the Consul and the gateway published inside.
//
//	mctl-lab up [--microctl BIN] [--images LIST] [--managers N]   make or complete the lab
//	mctl-lab down                                  remove everything it made
//	mctl-lab status                                nodes, engines, links, forwards
//	mctl-lab env                                   export lines for microctl
//	mctl-lab stop-node|start-node|partition-node|heal-node NODE
//
// The lab is found by name ("cluster") under netns.Root. It belongs to the
// forwarder process that `up` starts: if that process dies, the next `up`
// (or any test's netns.Sweep) removes the lab.
//
// Exit codes: 0 done, 1 error, 2 usage, 3 (status) the lab is not whole.
// It is an internal tool, not a microctl command: no cobra, plain flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/netns"
)

// labName is the lab's name: "cluster", or MICROCTL_LAB_NAME (tests run a
// lab of their own beside a person's).
var labName = func() string {
	if v := os.Getenv("MICROCTL_LAB_NAME"); v != "" {
		return v
	}
	return "cluster"
}()

// The ports the lab's stack publishes on its nodes (examples/cluster/stack.yml),
// and the ones the forwarder prefers on 127.0.0.1.
var forwards = []struct {
	Name          string
	Published     int
	PreferredHost int
}{
	{"consul", 18500, 28500},
	{"gateway", 18080, 28080},
}

type forwardState map[string]string // name -> 127.0.0.1:port

func usage() {
	fmt.Fprintln(os.Stderr, `usage: mctl-lab up|down|status|env|stop-node NODE|start-node NODE|partition-node NODE|heal-node NODE`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "lab: "+format+"\n", args...) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	code := 1
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "up":
		err = up(ctx, args, logf)
	case "down":
		err = down(logf)
	case "status":
		code, err = status()
		if err == nil && code != 0 {
			os.Exit(code)
		}
		code = 1
	case "env":
		err = env()
	case "stop-node", "start-node", "partition-node", "heal-node":
		if len(args) != 1 {
			usage()
		}
		err = fault(ctx, cmd, args[0], logf)
	case "serve": // the forwarder, started by up
		if len(args) != 1 {
			usage()
		}
		err = serve(ctx, args[0])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lab: error: %v\n", err)
		os.Exit(code)
	}
}

func find() (*netns.Lab, error) {
	l, err := netns.Find(labName)
	if errors.Is(err, netns.ErrNoLab) {
		return nil, errors.New("no cluster lab runs (run: scripts/cluster.sh up)")
	}
	return l, err
}

func up(ctx context.Context, args []string, logf func(string, ...any)) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	bin := fs.String("microctl", "microctl", "the microctl binary that forms the swarm")
	// MICROCTL_IMAGE_TAG as in examples/cluster/stack.yml: the dev tag is
	// shared by every checkout building on the engine.
	tag := os.Getenv("MICROCTL_IMAGE_TAG")
	if tag == "" {
		tag = "dev"
	}
	images := fs.String("images", fmt.Sprintf("microctl/consul:%[1]s,microctl/greeter:%[1]s,microctl/gateway:%[1]s", tag), "images to copy from the local engine to every node (comma-separated; empty for none; the tag from MICROCTL_IMAGE_TAG, default dev)")
	managers := fs.Int("managers", 1, "swarm managers: n1, then n2... (3 keeps a quorum with one node lost); a node already joined keeps its role")
	if err := fs.Parse(args); err != nil {
		os.Exit(2)
	}
	if *managers < 1 || *managers > 3 {
		fmt.Fprintln(os.Stderr, "lab: --managers takes 1 to 3")
		os.Exit(2)
	}
	if err := netns.Available(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if swept, err := netns.Sweep(); len(swept) > 0 || err != nil {
		logf("swept stale labs %v (%v)", swept, err)
	}
	l, err := netns.Find(labName)
	switch {
	case err == nil:
		l.SetLog(logf)
		logf("reusing the lab in %s", l.Dir)
		for _, n := range l.Nodes {
			if linked, err := l.Linked(n.Name); err == nil && !linked {
				if err := l.Heal(n.Name); err != nil {
					return err
				}
			}
			if err := l.StartNode(ctx, n.Name); err != nil {
				return err
			}
		}
	case errors.Is(err, netns.ErrNoLab):
		if l, err = netns.New(ctx, netns.WithNodes(3), netns.WithName(labName), netns.WithLog(logf)); err != nil {
			return err
		}
		if err := start(ctx, l); err != nil {
			return errors.Join(err, l.Close())
		}
	default:
		return err
	}
	if err := fence(ctx, true); err != nil {
		return err
	}
	if err := l.FormSwarm(ctx, *bin, *managers); err != nil {
		return err
	}
	if *images != "" {
		src, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return err
		}
		defer src.Close()
		if _, err := l.LoadImages(ctx, src, strings.Split(*images, ",")); err != nil {
			return err
		}
	}
	logf("up: %d nodes, %d manager(s) from n1; point microctl at it with: eval \"$(scripts/cluster.sh env)\"", len(l.Nodes), *managers)
	return nil
}

// start starts the engines and the forwarder, and hands the lab to the
// forwarder: the lab lives as long as it does.
func start(ctx context.Context, l *netns.Lab) error {
	if err := l.Start(ctx); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(l.Dir, "forward.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "serve", l.Dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: it outlives this command and the terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := readForwards(l); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the forwarder (pid %d) did not start; see %s", pid, logFile.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return l.Adopt(pid)
}

func readForwards(l *netns.Lab) (forwardState, error) {
	b, err := os.ReadFile(filepath.Join(l.Dir, "forward.json"))
	if err != nil {
		return nil, err
	}
	var f forwardState
	return f, json.Unmarshal(b, &f)
}

// serve listens on 127.0.0.1 for each forward and relays into the lab:
// to the published port on the first node that accepts, n1 first.
func serve(ctx context.Context, dir string) error {
	l, err := netns.Load(dir)
	if err != nil {
		return err
	}
	state := forwardState{}
	errc := make(chan error, len(forwards))
	for _, f := range forwards {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.PreferredHost))
		if err != nil {
			if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return err
			}
		}
		var targets []netns.Target
		for _, n := range l.Nodes {
			targets = append(targets, netns.Target{Netns: "/run/netns/" + n.Namespace, Addr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(f.Published))})
		}
		state[f.Name] = ln.Addr().String()
		go func() { errc <- netns.Forward(ctx, ln, targets, time.Second) }()
	}
	b, _ := json.Marshal(state)
	tmp := filepath.Join(dir, "forward.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "forward.json")); err != nil {
		return err
	}
	fmt.Printf("forwarding %s\n", b)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// fenced are the lab's subnets as the host would route them: the link
// network and the overlay. microctl, in the host's namespace, reads lab
// addresses from Consul (an instance's node, on the overlay) and may dial
// them, e.g. to deregister through the owning agent; without a route of
// their own those connections would follow the host's default route out
// of the machine. An unreachable route makes them fail at once, locally.
var fenced = []string{"10.249.0.0/24", netns.OverlaySubnet}

// fence adds (on) or removes the unreachable routes in the host's
// namespace: the only change the lab makes there.
func fence(ctx context.Context, on bool) error {
	for _, subnet := range fenced {
		args := []string{"route", "replace", "unreachable", subnet}
		if !on {
			args = []string{"route", "del", "unreachable", subnet}
		}
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil && on {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func down(logf func(string, ...any)) error {
	// Any lab of the name, live owner or not.
	entries, err := os.ReadDir(netns.Root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	found := false
	var errs []error
	for _, e := range entries {
		l, err := netns.Load(filepath.Join(netns.Root, e.Name()))
		if err != nil || l.Name != labName {
			continue
		}
		found = true
		l.SetLog(logf)
		if l.OwnerAlive() {
			_ = syscall.Kill(l.Owner, syscall.SIGTERM)
			for i := 0; i < 50 && l.OwnerAlive(); i++ {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
		logf("down: removed the lab in %s", l.Dir)
	}
	if !found {
		logf("down: no cluster lab here; nothing to do")
	}
	// The routes go with the last named lab (tests run theirs beside a
	// person's).
	if !otherNamedLab() {
		_ = fence(context.Background(), false)
	}
	return errors.Join(errs...)
}

func otherNamedLab() bool {
	entries, _ := os.ReadDir(netns.Root)
	for _, e := range entries {
		if l, err := netns.Load(filepath.Join(netns.Root, e.Name())); err == nil && l.Name != "" && l.OwnerAlive() {
			return true
		}
	}
	return false
}

func status() (int, error) {
	l, err := find()
	if err != nil {
		return 1, err
	}
	fw, _ := readForwards(l)
	fmt.Printf("lab %s in %s (forwarder pid %d)\n", l.ID, l.Dir, l.Owner)
	whole := true
	fmt.Printf("%-4s %-9s %-12s %-8s %-6s %s\n", "NODE", "HOSTNAME", "ADDRESS", "ENGINE", "LINK", "DOCKER_HOST")
	for _, n := range l.Nodes {
		engine, link := "running", "up"
		if !n.EngineRunning() {
			engine, whole = "stopped", false
		}
		if ok, err := l.Linked(n.Name); err != nil {
			link, whole = "?", false
		} else if !ok {
			link, whole = "cut", false
		}
		fmt.Printf("%-4s %-9s %-12s %-8s %-6s %s\n", n.Name, n.Hostname, n.Addr, engine, link, n.Host)
	}
	for _, f := range forwards {
		fmt.Printf("forward 127.0.0.1 -> %s:%d on the nodes: %s\n", f.Name, f.Published, fw[f.Name])
	}
	if !whole {
		return 3, nil
	}
	return 0, nil
}

func env() error {
	l, err := find()
	if err != nil {
		return err
	}
	fw, err := readForwards(l)
	if err != nil {
		return fmt.Errorf("the forwarder's state: %w", err)
	}
	fmt.Printf("export DOCKER_HOST=%s\n", l.Nodes[0].Host)
	fmt.Printf("export CONSUL_HTTP_ADDR=%s\n", fw["consul"])
	fmt.Printf("export MICROCTL_LAB_GATEWAY=http://%s\n", fw["gateway"])
	for _, n := range l.Nodes {
		fmt.Printf("export MICROCTL_LAB_%s=%s # %s, %s\n", strings.ToUpper(n.Name), n.Host, n.Hostname, n.Addr)
	}
	return nil
}

func fault(ctx context.Context, cmd, node string, logf func(string, ...any)) error {
	l, err := find()
	if err != nil {
		return err
	}
	l.SetLog(logf)
	switch cmd {
	case "stop-node":
		err = l.StopNode(node)
	case "start-node":
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		err = l.StartNode(ctx, node)
	case "partition-node":
		err = l.Partition(node)
	case "heal-node":
		err = l.Heal(node)
	}
	if err == nil {
		logf("%s %s: done", cmd, node)
	}
	return err
}
