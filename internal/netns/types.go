package netns

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// Root is where labs keep their state. Paths stay short: unix socket paths
// under an engine's exec-root are limited to 108 bytes.
var Root = filepath.Join(os.TempDir(), "mctl-lab")

// Options configure a lab.
type Options struct {
	Nodes int // engines, at least 1
	// Subnet is the link network between the namespaces; node i gets
	// host address 10+i. It is private to the lab's namespaces.
	Subnet netip.Prefix
	// StorageDriver for the engines. vfs works anywhere (no overlay mount
	// inside the lab is needed) at the cost of disk space.
	StorageDriver string
	// Log receives one line per step; nil discards.
	Log func(format string, args ...any)
	// Name marks a lab that outlives the process that made it (the
	// cluster lab of scripts/cluster.sh): Find looks it up by name, and
	// its engines take their node names (n1, n2...) as hostnames, so a
	// compose file can place services with node.hostname == n1.
	Name string
}

// Option sets an option.
type Option func(*Options)

// WithNodes sets the number of engines.
func WithNodes(n int) Option { return func(o *Options) { o.Nodes = n } }

// WithLog sets the step logger (t.Logf in tests).
func WithLog(f func(string, ...any)) Option { return func(o *Options) { o.Log = f } }

// WithStorageDriver sets the engines' storage driver.
func WithStorageDriver(d string) Option { return func(o *Options) { o.StorageDriver = d } }

// WithName names the lab (see Options.Name).
func WithName(name string) Option { return func(o *Options) { o.Name = name } }

// Node is one engine of the lab.
type Node struct {
	Name      string     `json:"name"`      // n1, n2, ...
	Hostname  string     `json:"hostname"`  // what the engine reports
	Namespace string     `json:"namespace"` // network namespace name (ip netns)
	Addr      netip.Addr `json:"addr"`      // its address on the lab link, on eth0
	Dir       string     `json:"dir"`
	Host      string     `json:"host"` // DOCKER_HOST for it: unix://.../docker.sock

	cmd     *exec.Cmd
	logFile *os.File
}

// Pidfile is where the engine writes its pid.
func (n *Node) Pidfile() string { return filepath.Join(n.Dir, "docker.pid") }

// Log is the engine's log file.
func (n *Node) Log() string { return filepath.Join(n.Dir, "dockerd.log") }

// Lab is a set of engines in namespaces.
type Lab struct {
	ID         string  `json:"id"`
	Name       string  `json:"name,omitempty"`
	Dir        string  `json:"dir"`
	Hub        string  `json:"hub"` // namespace holding the bridge
	Owner      int     `json:"owner"`
	OwnerStart uint64  `json:"owner_start"` // owner's start time, against pid reuse
	Nodes      []*Node `json:"nodes"`
	// Storage is the engines' storage driver.
	Storage string `json:"storage"`

	log       func(string, ...any)
	closeOnce sync.Once
	closeErr  error
}
