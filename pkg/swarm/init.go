package swarm

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/pkg/stringid"
)

// InitOptions are the inputs of Init. The zero value initialises a swarm
// with the engine's defaults and creates no network.
type InitOptions struct {
	// AdvertiseAddr is IP[:PORT] or INTERFACE[:PORT]; empty lets the engine
	// choose (it refuses when the machine has several candidates).
	AdvertiseAddr string
	// ListenAddr is IP[:PORT] or INTERFACE[:PORT]; empty means 0.0.0.0:2377.
	ListenAddr string
	// DataPathPort is the VXLAN port (0: the engine's default, 4789).
	DataPathPort uint32
	// DefaultAddrPools are the CIDRs overlay subnets are allocated from.
	DefaultAddrPools []string
	Autolock         bool
	// Networks are ensured after the swarm exists (see EnsureNetwork).
	Networks []NetworkSpec
	// Interfaces lists the machine's interfaces for resolving interface
	// names; nil means LocalInterfaces. Names are resolved here only when
	// the engine is local (a unix socket); a remote engine resolves them.
	Interfaces func() ([]HostInterface, error)
}

const defaultListenAddr = "0.0.0.0:2377"

// Validate checks the options without the engine.
func (o InitOptions) Validate() error {
	if o.DataPathPort != 0 && (o.DataPathPort < 1024 || o.DataPathPort > 49151) {
		return fmt.Errorf("--data-path-port %d: must be from 1024 to 49151", o.DataPathPort)
	}
	var pools []netip.Prefix
	for _, c := range o.DefaultAddrPools {
		p, err := ParseCIDR(c)
		if err != nil {
			return fmt.Errorf("--default-addr-pool: %w", err)
		}
		for _, q := range pools {
			if q.Overlaps(p) {
				return fmt.Errorf("--default-addr-pool: %s and %s overlap", q, p)
			}
		}
		pools = append(pools, p)
	}
	for _, a := range []struct{ flag, v string }{{"--advertise-addr", o.AdvertiseAddr}, {"--listen-addr", o.ListenAddr}} {
		if a.v == "" {
			continue
		}
		if _, _, err := SplitAddrPort(a.v); err != nil {
			return &AddrError{Flag: a.flag, Value: a.v, Msg: err.Error()}
		}
	}
	return ValidateNetworkSpecs(o.Networks)
}

// ValidateNetworkSpecs validates each spec and that no two share a name or
// overlapping subnets.
func ValidateNetworkSpecs(specs []NetworkSpec) error {
	seen := map[string]bool{}
	type owned struct {
		p    netip.Prefix
		name string
	}
	var all []owned
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return err
		}
		if seen[s.Name] {
			return &SpecError{Msg: fmt.Sprintf("network %s is asked for twice", s.Name)}
		}
		seen[s.Name] = true
		for _, pl := range s.Pools {
			p, _ := ParseCIDR(pl.Subnet)
			for _, o := range all {
				if o.p.Overlaps(p) {
					return &SpecError{Msg: fmt.Sprintf("networks %s (%s) and %s (%s) overlap", o.name, o.p, s.Name, p)}
				}
			}
			all = append(all, owned{p, s.Name})
		}
	}
	return nil
}

// InitAction is what Init does with the engine's swarm.
type InitAction string

const (
	InitCreate   InitAction = "init"     // not in a swarm: initialise one
	InitExisting InitAction = "existing" // already a manager: report it, ensure networks
)

// InitRefusedError: the engine is in a state where initialising is wrong
// (a worker of another swarm, joining, locked).
type InitRefusedError struct {
	Host   string
	State  string
	Detail string
}

func (e *InitRefusedError) Error() string {
	switch e.State {
	case "worker":
		return fmt.Sprintf("the Docker Engine at %s is a worker in a swarm; a worker cannot initialise one", e.Host)
	case "pending":
		return fmt.Sprintf("the Docker Engine at %s is joining a swarm (pending)", e.Host)
	case "locked":
		return fmt.Sprintf("the swarm on the Docker Engine at %s is locked", e.Host)
	}
	msg := fmt.Sprintf("the Docker Engine at %s is in swarm state %q", e.Host, e.State)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Hint says what to do about it.
func (e *InitRefusedError) Hint() string {
	switch e.State {
	case "worker":
		return "run it against a manager with --docker-host or DOCKER_HOST, or leave the swarm first: microctl swarm leave"
	case "pending":
		return "wait for the join to finish, or give it up: microctl swarm leave --force"
	case "locked":
		return "unlock it: docker swarm unlock"
	}
	return "reset it with: microctl swarm leave --force"
}

// DecideInit is the idempotency decision of `swarm init`, from the
// engine's swarm info alone.
func DecideInit(host string, sw swarm.Info) (InitAction, error) {
	switch sw.LocalNodeState {
	case swarm.LocalNodeStateInactive, "":
		return InitCreate, nil
	case swarm.LocalNodeStateActive:
		if sw.ControlAvailable {
			return InitExisting, nil
		}
		return "", &InitRefusedError{Host: host, State: "worker"}
	}
	return "", &InitRefusedError{Host: host, State: string(sw.LocalNodeState), Detail: sw.Error}
}

// InitAPI is what Init needs from the Docker client.
type InitAPI interface {
	Info(ctx context.Context) (system.Info, error)
	NetworkAPI
	SwarmInit(ctx context.Context, req swarm.InitRequest) (string, error)
	SwarmInspect(ctx context.Context) (swarm.Swarm, error)
	SwarmGetUnlockKey(ctx context.Context) (swarm.UnlockKeyResponse, error)
}

// NetworkResult is one network that Init or `network create` ensured.
type NetworkResult struct {
	OverlayNetwork
	Created bool `json:"created"` // false: an identical network was already there
}

// JoinTokens are the secrets nodes join with.
type JoinTokens struct {
	Worker  string `json:"worker"`
	Manager string `json:"manager"`
}

// InitResult is what Init did and what the swarm now is. The JSON field
// names are part of `swarm init -o json` and stay stable.
type InitResult struct {
	SwarmID     string          `json:"swarm_id"`
	NodeID      string          `json:"node_id"`
	ManagerAddr string          `json:"manager_addr"`
	Initialised bool            `json:"initialised"` // false: the node was already a manager
	Networks    []NetworkResult `json:"networks"`
	JoinTokens  JoinTokens      `json:"join_tokens"`
	JoinCommand JoinTokens      `json:"join_commands"`
	UnlockKey   string          `json:"unlock_key,omitempty"`
	Warnings    []string        `json:"warnings"`
}

// JoinCommand is the command a node runs to join with token.
func JoinCommand(token, managerAddr string) string {
	return fmt.Sprintf("microctl swarm join --token %s %s", token, managerAddr)
}

// InitIncompleteError: a step failed after earlier ones succeeded. It says
// exactly what exists now, so the user knows what to clean up or re-run.
type InitIncompleteError struct {
	Initialised bool // this run created the swarm
	SwarmID     string
	ManagerAddr string
	Done        []NetworkResult // networks ensured before the failure
	Failed      string          // the network that failed
	Err         error
}

func (e *InitIncompleteError) Error() string {
	var b strings.Builder
	if e.Initialised {
		fmt.Fprintf(&b, "swarm initialised (swarm %s, manager %s)", stringid.TruncateID(e.SwarmID), e.ManagerAddr)
	} else {
		fmt.Fprintf(&b, "this node was already a manager of swarm %s", stringid.TruncateID(e.SwarmID))
	}
	var created, existed []string
	for _, n := range e.Done {
		if n.Created {
			created = append(created, n.Name)
		} else {
			existed = append(existed, n.Name)
		}
	}
	if len(created) > 0 {
		fmt.Fprintf(&b, " and network %s created", strings.Join(created, ", "))
	}
	if len(existed) > 0 {
		fmt.Fprintf(&b, " (network %s already there)", strings.Join(existed, ", "))
	}
	fmt.Fprintf(&b, ", but network %s was not created: %v", e.Failed, e.Err)
	return b.String()
}

func (e *InitIncompleteError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *InitIncompleteError) Hint() string {
	return "the swarm stays; fix the cause and run microctl swarm init again: it keeps what exists"
}

// predictedIngress stands for the ingress network that `swarm init` will
// create, so that a requested subnet that would collide with it is refused
// before the swarm exists rather than after: swarmkit gives ingress the
// first subnet of the first default address pool (10.0.0.0/24 by default).
func predictedIngress(pools []string) network.Summary {
	first := "10.0.0.0/24"
	if len(pools) > 0 {
		if p, err := netip.ParsePrefix(pools[0]); err == nil {
			bits := max(24, p.Bits())
			first = netip.PrefixFrom(p.Addr(), bits).Masked().String()
		}
	}
	return network.Summary{Name: "ingress", IPAM: network.IPAM{Config: []network.IPAMConfig{{Subnet: first}}}}
}

// Init initialises a swarm on the engine, or, when the engine is already a
// manager, reports the swarm it manages; either way it then ensures the
// requested networks. Every check that can fail without changing anything
// (options, engine state, addresses, each network's conflicts and overlaps)
// runs before the first change, so bad input leaves nothing half-made. When
// a network still fails after the swarm was initialised, the error is an
// *InitIncompleteError saying what exists.
func Init(ctx context.Context, cli InitAPI, o InitOptions) (InitResult, error) {
	res := InitResult{Networks: []NetworkResult{}, Warnings: []string{}}
	if err := o.Validate(); err != nil {
		return res, err
	}
	host := cli.DaemonHost()
	info, err := cli.Info(ctx)
	if err != nil {
		return res, ClassifyEngine(host, err)
	}
	action, err := DecideInit(host, info.Swarm)
	if err != nil {
		return res, err
	}

	advertise, listen, err := resolveAddrs(host, info.Name, o.Interfaces, o.AdvertiseAddr, o.ListenAddr)
	if err != nil {
		return res, err
	}

	// Judge every network against what exists now, before changing anything.
	var existing []network.Summary
	if len(o.Networks) > 0 {
		if existing, err = cli.NetworkList(ctx, network.ListOptions{}); err != nil {
			return res, ClassifyEngine(host, err)
		}
		if action == InitCreate {
			existing = append(existing, predictedIngress(o.DefaultAddrPools))
		}
		for _, spec := range o.Networks {
			same, err := networksNamed(ctx, cli, spec.Name)
			if err != nil {
				return res, err
			}
			if _, err := DecideNetwork(spec, same, existing); err != nil {
				return res, err
			}
		}
	}

	if action == InitCreate {
		if listen == "" {
			listen = defaultListenAddr
		}
		req := swarm.InitRequest{
			ListenAddr:       listen,
			AdvertiseAddr:    advertise,
			DataPathPort:     o.DataPathPort,
			DefaultAddrPool:  o.DefaultAddrPools,
			AutoLockManagers: o.Autolock,
			Availability:     swarm.NodeAvailabilityActive,
		}
		if _, err := cli.SwarmInit(ctx, req); err != nil {
			return res, initError(host, err)
		}
		res.Initialised = true
		if info, err = cli.Info(ctx); err != nil {
			return res, fmt.Errorf("swarm initialised, but reading it back failed: %w", ClassifyEngine(host, err))
		}
	}
	sw, err := cli.SwarmInspect(ctx)
	if err != nil {
		err = ClassifyEngine(host, err)
		if res.Initialised {
			return res, fmt.Errorf("swarm initialised, but reading it back failed: %w", err)
		}
		return res, err
	}
	res.SwarmID = sw.ID
	res.NodeID = info.Swarm.NodeID
	res.ManagerAddr = managerAddrOf(info.Swarm)
	res.JoinTokens = JoinTokens{Worker: sw.JoinTokens.Worker, Manager: sw.JoinTokens.Manager}
	res.JoinCommand = JoinTokens{Worker: JoinCommand(sw.JoinTokens.Worker, res.ManagerAddr), Manager: JoinCommand(sw.JoinTokens.Manager, res.ManagerAddr)}
	if action == InitExisting {
		res.Warnings = ignoredInitOptions(o, advertise, info.Swarm, sw)
	}

	for _, spec := range o.Networks {
		created, err := EnsureNetwork(ctx, cli, spec)
		if err != nil {
			return res, &InitIncompleteError{Initialised: res.Initialised, SwarmID: res.SwarmID,
				ManagerAddr: res.ManagerAddr, Done: res.Networks, Failed: spec.Name, Err: err}
		}
		nr := NetworkResult{Created: created}
		if same, err := networksNamed(ctx, cli, spec.Name); err == nil && len(same) == 1 {
			nr.OverlayNetwork = NewOverlayNetwork(same[0])
		} else {
			nr.OverlayNetwork = OverlayNetwork{Name: spec.Name, Subnets: []IPAMPool{}, Labels: map[string]string{}, Services: []string{}}
		}
		res.Networks = append(res.Networks, nr)
	}

	if o.Autolock && (res.Initialised || sw.Spec.EncryptionConfig.AutoLockManagers) {
		k, err := cli.SwarmGetUnlockKey(ctx)
		if err != nil {
			return res, fmt.Errorf("swarm is autolocked, but reading its unlock key failed (get it with docker swarm unlock-key): %w", ClassifyEngine(host, err))
		}
		res.UnlockKey = k.UnlockKey
	}
	return res, nil
}

// managerAddrOf is the address other nodes join this manager at.
func managerAddrOf(sw swarm.Info) string {
	for _, m := range sw.RemoteManagers {
		if m.NodeID == sw.NodeID && m.Addr != "" {
			return m.Addr
		}
	}
	if sw.NodeAddr != "" {
		return joinHostPort(sw.NodeAddr, DefaultSwarmPort)
	}
	return ""
}

// ignoredInitOptions lists the options that only apply when a swarm is
// created, and that differ from the swarm that already exists: they are
// ignored, and the user is told so rather than left believing them applied.
func ignoredInitOptions(o InitOptions, advertise string, info swarm.Info, sw swarm.Swarm) []string {
	var w []string
	if advertise != "" {
		h, _, _ := SplitAddrPort(advertise)
		if h != info.NodeAddr {
			w = append(w, fmt.Sprintf("--advertise-addr %s ignored: this node already advertises %s", o.AdvertiseAddr, info.NodeAddr))
		}
	}
	if o.ListenAddr != "" {
		w = append(w, fmt.Sprintf("--listen-addr %s ignored: the swarm already exists", o.ListenAddr))
	}
	if o.DataPathPort != 0 && o.DataPathPort != sw.DataPathPort {
		w = append(w, fmt.Sprintf("--data-path-port %d ignored: the swarm uses %d", o.DataPathPort, sw.DataPathPort))
	}
	if len(o.DefaultAddrPools) > 0 && !slices.Equal(o.DefaultAddrPools, sw.DefaultAddrPool) {
		w = append(w, fmt.Sprintf("--default-addr-pool %s ignored: the swarm uses %s", strings.Join(o.DefaultAddrPools, ","), strings.Join(sw.DefaultAddrPool, ",")))
	}
	if o.Autolock && !sw.Spec.EncryptionConfig.AutoLockManagers {
		w = append(w, "--autolock ignored: the existing swarm is not autolocked (turn it on with docker swarm update --autolock=true)")
	}
	return w
}

// SwarmInitError is the engine refusing `swarm init`, with a hint when the
// cause is one a person can fix.
type SwarmInitError struct {
	Host string
	Err  error
}

func (e *SwarmInitError) Error() string { return "swarm init: " + e.Err.Error() }
func (e *SwarmInitError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *SwarmInitError) Hint() string {
	msg := e.Err.Error()
	switch {
	case strings.Contains(msg, "could not choose an IP address"), strings.Contains(msg, "advertise address"):
		return "pass --advertise-addr with an IP address or interface of this machine"
	case strings.Contains(msg, "address already in use"):
		return "another process holds the port; pass --listen-addr with another port"
	case strings.Contains(msg, "already part of a swarm"):
		return "it joined a swarm meanwhile; run microctl swarm status"
	}
	return ""
}

func initError(host string, err error) error {
	err = ClassifyEngine(host, err)
	var ue *EngineUnreachableError
	if errors.As(err, &ue) {
		return err
	}
	return &SwarmInitError{Host: host, Err: err}
}
