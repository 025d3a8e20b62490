//go:build linux

package netns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Available says why a lab cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, dockerd)")
	}
	for _, tool := range []string{"ip", "nsenter", "unshare", "dockerd", "containerd", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s on PATH", tool)
		}
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// New creates the namespaces and the links, and writes the manifest. The
// engines are not started yet (Start). On error everything made so far is
// undone.
func New(ctx context.Context, opts ...Option) (*Lab, error) {
	o := Options{Nodes: 3, Subnet: netip.MustParsePrefix("10.249.0.0/24"), StorageDriver: "vfs"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Nodes < 1 || o.Nodes > 200 {
		return nil, fmt.Errorf("netns: %d nodes", o.Nodes)
	}
	if err := Available(); err != nil {
		return nil, err
	}
	id := fmt.Sprintf("%06x", rand.IntN(1<<24))
	l := &Lab{ID: id, Name: o.Name, Dir: filepath.Join(Root, id), Hub: "mctl-" + id + "-hub", Owner: os.Getpid(), OwnerStart: procStart(os.Getpid()),
		Storage: o.StorageDriver, log: o.Log}
	if l.log == nil {
		l.log = func(string, ...any) {}
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, err
	}
	for i := 1; i <= o.Nodes; i++ {
		a := o.Subnet.Addr().As4()
		a[3] = byte(10 + i)
		hostname := fmt.Sprintf("mctl-%s-n%d", id, i)
		if o.Name != "" {
			hostname = fmt.Sprintf("n%d", i)
		}
		n := &Node{Name: fmt.Sprintf("n%d", i), Hostname: hostname, Namespace: fmt.Sprintf("mctl-%s-n%d", id, i),
			Addr: netip.AddrFrom4(a), Dir: filepath.Join(l.Dir, fmt.Sprintf("n%d", i))}
		n.Host = "unix://" + filepath.Join(n.Dir, "docker.sock")
		l.Nodes = append(l.Nodes, n)
	}
	// The manifest first, so that a crash half-way can still be swept.
	if err := l.writeManifest(); err != nil {
		return nil, err
	}
	if err := l.wire(ctx, o); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) wire(ctx context.Context, o Options) error {
	l.log("netns: hub namespace %s with bridge br0", l.Hub)
	steps := [][]string{
		{"netns", "add", l.Hub},
		{"-n", l.Hub, "link", "set", "lo", "up"},
		{"-n", l.Hub, "link", "add", "br0", "type", "bridge"},
		{"-n", l.Hub, "link", "set", "br0", "up"},
	}
	for _, n := range l.Nodes {
		peer := "p" + n.Name // in the hub namespace
		steps = append(steps,
			[]string{"netns", "add", n.Namespace},
			[]string{"-n", n.Namespace, "link", "set", "lo", "up"},
			// Both ends are created straight in their namespaces: no name
			// is ever taken in the host's namespace.
			[]string{"-n", n.Namespace, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", l.Hub},
			[]string{"-n", n.Namespace, "addr", "add", fmt.Sprintf("%s/%d", n.Addr, o.Subnet.Bits()), "dev", "eth0"},
			[]string{"-n", n.Namespace, "link", "set", "eth0", "up"},
			[]string{"-n", l.Hub, "link", "set", peer, "master", "br0"},
			[]string{"-n", l.Hub, "link", "set", peer, "up"},
		)
	}
	for _, s := range steps {
		if err := run(ctx, "ip", s...); err != nil {
			return err
		}
	}
	for _, n := range l.Nodes {
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return err
		}
		l.log("netns: %s in namespace %s at %s, engine %s", n.Name, n.Namespace, n.Addr, n.Host)
	}
	return nil
}

func (l *Lab) writeManifest() error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(l.Dir, "lab.json"), b, 0o644)
}

// Start starts every engine at once and waits until each answers.
func (l *Lab) Start(ctx context.Context) error {
	errs := make([]error, len(l.Nodes))
	var wg sync.WaitGroup
	for i, n := range l.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.startNode(ctx, n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) startNode(ctx context.Context, n *Node) error {
	// The host's /etc/docker/daemon.json would set the data-root and the
	// storage driver and clash with the flags: each engine gets its own.
	cfg := filepath.Join(n.Dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte("{}\n"), 0o644); err != nil {
		return err
	}
	// Appended to: a node started again (StartNode) keeps its history.
	f, err := os.OpenFile(n.Log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.logFile = f
	// nsenter --net only (not `ip netns exec`, which also remounts /sys and
	// hides the cgroup mounts dockerd needs: "Devices cgroup isn't
	// mounted"); unshare --uts gives the engine its own hostname.
	args := []string{"--net=/run/netns/" + n.Namespace, "--", "unshare", "--uts", "--",
		"sh", "-c", `hostname "$0" && exec "$@"`, n.Hostname,
		"dockerd",
		"--config-file", cfg,
		"--data-root", filepath.Join(n.Dir, "data"),
		"--exec-root", filepath.Join(n.Dir, "exec"),
		"--pidfile", n.Pidfile(),
		"-H", n.Host,
		"--storage-driver", l.Storage,
		"--bridge", "none",
		"--iptables=false",
		"--ip-masq=false",
		"--cgroup-parent", n.Namespace,
		"--shutdown-timeout", "3",
		"--log-level", "warn",
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a Ctrl-C to the test does not hit it before
	// Close can stop it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	n.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sock := strings.TrimPrefix(n.Host, "unix://")
	deadline := time.After(90 * time.Second)
	for {
		if pingSocket(sock) {
			l.log("netns: %s: engine up (pid %d)", n.Name, cmd.Process.Pid)
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("netns: %s: dockerd exited (%v): %s", n.Name, err, tail(n.Log(), 5))
		case <-deadline:
			return fmt.Errorf("netns: %s: dockerd did not answer within 90s: %s", n.Name, tail(n.Log(), 5))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, " | ")
}

// Close stops the engines and removes the namespaces, the cgroups the
// engines made, and the lab's directory. It can run more than once and
// after a partial New; it keeps going past failures and returns them all.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.teardown() })
	return l.closeErr
}

func (l *Lab) teardown() error {
	// Engines first: SIGTERM lets each stop its containers and its
	// containerd and unmount what it mounted.
	errs := make([]error, len(l.Nodes))
	var wg sync.WaitGroup
	for i, n := range l.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = stopEngine(n)
		}()
	}
	wg.Wait()
	// Whatever the engines left behind: processes started from the lab
	// (shims, a containerd of a killed engine) are found by the lab's
	// directory on their command line, and mounts under it are detached.
	killUnder(l.Dir)
	if err := unmountUnder(l.Dir); err != nil {
		errs = append(errs, err)
	}
	for _, n := range l.Nodes {
		if err := deleteNetns(n.Namespace); err != nil {
			errs = append(errs, err)
		}
		removeCgroup(n.Namespace)
	}
	if err := deleteNetns(l.Hub); err != nil {
		errs = append(errs, err)
	}
	for _, n := range l.Nodes {
		if n.logFile != nil {
			n.logFile.Close()
		}
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		errs = append(errs, err)
	}
	_ = os.Remove(filepath.Dir(l.Dir)) // the root too, when no other lab uses it
	return errors.Join(errs...)
}

func stopEngine(n *Node) error {
	pid := 0
	if n.cmd != nil && n.cmd.Process != nil {
		pid = n.cmd.Process.Pid
	} else if b, err := os.ReadFile(n.Pidfile()); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid <= 0 || !alive(pid) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 200 { // up to 20 s; shutdown-timeout is 3 s
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	return fmt.Errorf("netns: %s: dockerd (pid %d) ignored SIGTERM; killed", n.Name, pid)
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// procStart is a process's start time in clock ticks since boot (field 22
// of /proc/PID/stat), to tell a pid from a later process reusing it.
func procStart(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// killUnder kills the processes whose command line names dir: only what
// the lab started has the lab's random directory in its arguments.
func killUnder(dir string) {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), dir+"/") {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			points = append(points, f[4])
		}
	}
	var errs []error
	for i := len(points) - 1; i >= 0; i-- {
		if err := syscall.Unmount(points[i], syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", points[i], err))
		}
	}
	return errors.Join(errs...)
}

func deleteNetns(name string) error {
	if _, err := os.Stat("/run/netns/" + name); err != nil {
		return nil
	}
	return run(context.Background(), "ip", "netns", "delete", name)
}

// removeCgroup removes the cgroup the engine's --cgroup-parent made, in
// every hierarchy (v1) or the unified one (v2), deepest first.
func removeCgroup(parent string) {
	var dirs []string
	for _, base := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/*"} {
		matches, _ := filepath.Glob(filepath.Join(base, parent))
		dirs = append(dirs, matches...)
	}
	for _, d := range dirs {
		var sub []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		for i := len(sub) - 1; i >= 0; i-- {
			_ = os.Remove(sub[i])
		}
	}
}

// Sweep closes the labs under Root whose owner process is gone (a test
// binary killed before its cleanup ran) and returns what it removed.
func Sweep() ([]string, error) {
	entries, err := os.ReadDir(Root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var swept []string
	var errs []error
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(Root, e.Name(), "lab.json"))
		if err != nil {
			continue
		}
		var l Lab
		if json.Unmarshal(b, &l) != nil || l.Dir != filepath.Join(Root, e.Name()) {
			continue
		}
		if alive(l.Owner) && procStart(l.Owner) == l.OwnerStart {
			continue // a lab in use, perhaps by a test running in parallel
		}
		l.log = func(string, ...any) {}
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
		swept = append(swept, l.Dir)
	}
	return swept, errors.Join(errs...)
}
