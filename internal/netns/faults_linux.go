//go:build linux

package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Load reads a lab from its manifest, for a process other than the one
// that made it (scripts/cluster.sh runs one process per command).
func Load(dir string) (*Lab, error) {
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		return nil, err
	}
	var l Lab
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("netns: %s: %w", dir, err)
	}
	if l.Dir != dir {
		return nil, fmt.Errorf("netns: %s: manifest names %s", dir, l.Dir)
	}
	l.log = func(string, ...any) {}
	return &l, nil
}

// ErrNoLab is returned by Find when no live lab has the name.
var ErrNoLab = errors.New("netns: no such lab")

// Find returns the lab with the name whose owner still runs. A lab whose
// owner died is Sweep's, not Find's.
func Find(name string) (*Lab, error) {
	entries, err := os.ReadDir(Root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		l, err := Load(filepath.Join(Root, e.Name()))
		if err != nil || l.Name != name || !l.OwnerAlive() {
			continue
		}
		return l, nil
	}
	return nil, fmt.Errorf("%w named %q under %s", ErrNoLab, name, Root)
}

// OwnerAlive reports whether the process owning the lab still runs.
func (l *Lab) OwnerAlive() bool { return alive(l.Owner) && procStart(l.Owner) == l.OwnerStart }

// SetLog sets the step logger of a loaded lab.
func (l *Lab) SetLog(f func(string, ...any)) { l.log = f }

// Adopt hands the lab to another process (a long-lived one, such as the
// cluster lab's forwarder): the lab is swept once that process is gone.
func (l *Lab) Adopt(pid int) error {
	start := procStart(pid)
	if start == 0 {
		return fmt.Errorf("netns: adopt: no process %d", pid)
	}
	l.Owner, l.OwnerStart = pid, start
	return l.writeManifest()
}

// Node returns the node with the name (n1, n2...).
func (l *Lab) Node(name string) (*Node, error) {
	for _, n := range l.Nodes {
		if n.Name == name || n.Hostname == name {
			return n, nil
		}
	}
	names := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		names[i] = n.Name
	}
	return nil, fmt.Errorf("netns: no node %q in the lab (nodes: %s)", name, strings.Join(names, ", "))
}

// EngineRunning reports whether the node's engine answers on its socket.
func (n *Node) EngineRunning() bool { return pingSocket(strings.TrimPrefix(n.Host, "unix://")) }

// StopNode is a power cut: every process of the node (its containers, the
// shims, containerd, dockerd) is killed with SIGKILL, without warning, and
// the mounts the engine left are detached, as a reboot would. The engine's
// state on disk stays, for StartNode.
func (l *Lab) StopNode(name string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	l.log("netns: %s: killing every process of the node", n.Name)
	// Containers first (they live in the cgroups under the engine's
	// --cgroup-parent; their command lines do not name the lab), then
	// everything that names the node's directory.
	for range 3 {
		killCgroup(n.Namespace)
		killUnder(n.Dir)
		time.Sleep(100 * time.Millisecond)
	}
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
	}
	deadline := time.Now().Add(10 * time.Second)
	for n.EngineRunning() || pidAlive(n.Pidfile()) {
		if time.Now().After(deadline) {
			return fmt.Errorf("netns: %s: engine still runs after SIGKILL", n.Name)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = os.Remove(n.Pidfile())
	_ = os.Remove(strings.TrimPrefix(n.Host, "unix://"))
	return unmountUnder(n.Dir)
}

// StartNode starts a stopped node's engine again on its old state: Swarm
// sees the node come back.
func (l *Lab) StartNode(ctx context.Context, name string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	if n.EngineRunning() {
		return nil
	}
	return l.startNode(ctx, n)
}

// Partition cuts the node's link to the others (its port on the hub's
// bridge goes down): its engine and containers keep running, isolated, and
// packets to it go nowhere.
func (l *Lab) Partition(name string) error { return l.setLink(name, "down") }

// Heal puts the node's link back up.
func (l *Lab) Heal(name string) error { return l.setLink(name, "up") }

func (l *Lab) setLink(name, state string) error {
	n, err := l.Node(name)
	if err != nil {
		return err
	}
	l.log("netns: %s: link %s", n.Name, state)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return run(ctx, "ip", "-n", l.Hub, "link", "set", "p"+n.Name, state)
}

// Linked reports whether the node's link to the others is up.
func (l *Lab) Linked(name string) (bool, error) {
	n, err := l.Node(name)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "-n", l.Hub, "-o", "link", "show", "p"+n.Name).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("ip -n %s link show p%s: %v: %s", l.Hub, n.Name, err, strings.TrimSpace(string(out)))
	}
	// "<BROADCAST,MULTICAST,UP,LOWER_UP>": UP is the administrative state
	// setLink changes.
	s := string(out)
	if i, j := strings.IndexByte(s, '<'), strings.IndexByte(s, '>'); i >= 0 && j > i {
		for _, f := range strings.Split(s[i+1:j], ",") {
			if f == "UP" {
				return true, nil
			}
		}
	}
	return false, nil
}

func pidAlive(pidfile string) bool {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 0 && alive(pid)
}

// killCgroup kills every process in the cgroups below parent, in every
// hierarchy (v1) or the unified one (v2).
func killCgroup(parent string) {
	var dirs []string
	for _, base := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/*"} {
		matches, _ := filepath.Glob(filepath.Join(base, parent))
		dirs = append(dirs, matches...)
	}
	for _, d := range dirs {
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			b, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}
