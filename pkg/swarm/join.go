package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

// joinTokenRe is the shape of a swarm join token: SWMTKN-1-<CA digest>-<secret>,
// lowercase base36 both.
var joinTokenRe = regexp.MustCompile(`^SWMTKN-1-[0-9a-z]+-[0-9a-z]+$`)

// ValidateJoinToken checks a token's shape, so a truncated copy-paste is
// caught before the engine spends its join timeout on it.
func ValidateJoinToken(t string) error {
	if !joinTokenRe.MatchString(t) {
		shown := t
		if len(shown) > 16 {
			shown = shown[:16] + "..."
		}
		return fmt.Errorf("invalid join token %q: want SWMTKN-1-..., as printed by microctl swarm token worker", shown)
	}
	return nil
}

// ParseAvailability parses --availability.
func ParseAvailability(v string) (swarm.NodeAvailability, error) {
	switch a := swarm.NodeAvailability(strings.ToLower(v)); a {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
		return a, nil
	case "":
		return swarm.NodeAvailabilityActive, nil
	}
	return "", fmt.Errorf("invalid --availability %q: want active, pause or drain", v)
}

// JoinOptions are the inputs of Join.
type JoinOptions struct {
	Token         string
	RemoteAddr    string // MANAGER_ADDR: HOST[:PORT], port 2377 by default
	AdvertiseAddr string // IP[:PORT] or INTERFACE[:PORT]; empty lets the engine choose
	ListenAddr    string // empty: 0.0.0.0:2377
	Availability  string // active (default), pause or drain
	// Interfaces: as in InitOptions.
	Interfaces func() ([]HostInterface, error)
}

// Validate checks the options without the engine.
func (o JoinOptions) Validate() error {
	if err := ValidateJoinToken(o.Token); err != nil {
		return err
	}
	if _, err := ManagerAddr(o.RemoteAddr); err != nil {
		return err
	}
	if _, err := ParseAvailability(o.Availability); err != nil {
		return err
	}
	for _, a := range []struct{ flag, v string }{{"--advertise-addr", o.AdvertiseAddr}, {"--listen-addr", o.ListenAddr}} {
		if a.v == "" {
			continue
		}
		if _, _, err := SplitAddrPort(a.v); err != nil {
			return &AddrError{Flag: a.flag, Value: a.v, Msg: err.Error()}
		}
	}
	return nil
}

// JoinAction is what Join does.
type JoinAction string

const (
	JoinNew    JoinAction = "join"
	JoinMember JoinAction = "member" // already in the swarm that manager belongs to
)

// AlreadyInSwarmError: the engine is in a swarm, apparently another one.
type AlreadyInSwarmError struct {
	Host     string
	Role     string
	Managers []string
}

func (e *AlreadyInSwarmError) Error() string {
	return fmt.Sprintf("the Docker Engine at %s is already a %s in a swarm (managers: %s)", e.Host, e.Role, strings.Join(e.Managers, ", "))
}

// Hint says what to do about it.
func (e *AlreadyInSwarmError) Hint() string {
	return "leave that swarm first: microctl swarm leave"
}

func roleOf(sw swarm.Info) string {
	if sw.ControlAvailable {
		return string(swarm.NodeRoleManager)
	}
	return string(swarm.NodeRoleWorker)
}

func managerAddrs(sw swarm.Info) []string {
	out := make([]string, 0, len(sw.RemoteManagers))
	for _, m := range sw.RemoteManagers {
		out = append(out, m.Addr)
	}
	return out
}

// DecideJoin is the idempotency decision of `swarm join`: a node that is
// already in the swarm of remote (one of its known managers) is left as it
// is; a node in some other swarm is refused.
func DecideJoin(host string, sw swarm.Info, remote string) (JoinAction, error) {
	switch sw.LocalNodeState {
	case swarm.LocalNodeStateInactive, "":
		return JoinNew, nil
	case swarm.LocalNodeStateActive:
		rh, rp, _ := net.SplitHostPort(remote)
		for _, m := range sw.RemoteManagers {
			mh, mp, err := net.SplitHostPort(m.Addr)
			if m.Addr == remote || err == nil && mh == rh && mp == rp {
				return JoinMember, nil
			}
		}
		return "", &AlreadyInSwarmError{Host: host, Role: roleOf(sw), Managers: managerAddrs(sw)}
	}
	return "", &InitRefusedError{Host: host, State: string(sw.LocalNodeState), Detail: sw.Error}
}

// JoinAPI is what Join needs from the Docker client.
type JoinAPI interface {
	Info(ctx context.Context) (system.Info, error)
	SwarmJoin(ctx context.Context, req swarm.JoinRequest) error
	DaemonHost() string
}

// JoinResult is what Join did. The JSON field names are part of
// `swarm join -o json`.
type JoinResult struct {
	NodeID      string   `json:"node_id"`
	Role        string   `json:"role"` // worker or manager
	ManagerAddr string   `json:"manager_addr"`
	Joined      bool     `json:"joined"` // false: the node was already a member
	Managers    []string `json:"managers"`
}

// SwarmJoinError is the engine refusing or failing the join, with a hint.
type SwarmJoinError struct {
	Remote string
	Err    error
}

func (e *SwarmJoinError) Error() string {
	return fmt.Sprintf("join the swarm at %s: %s", e.Remote, swarmFirstLine(e.Err.Error()))
}
func (e *SwarmJoinError) Unwrap() error { return e.Err }

// Hint says what to do about it.
func (e *SwarmJoinError) Hint() string {
	msg := e.Err.Error()
	switch {
	case strings.Contains(msg, "Timeout was reached"):
		return fmt.Sprintf("is %s reachable from the engine's host? the join goes on in the background; give it up with microctl swarm leave --force", e.Remote)
	case strings.Contains(msg, "join token"), strings.Contains(msg, "token"):
		return "get the current token on a manager: microctl swarm token worker|manager"
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "no route"), strings.Contains(msg, "unreachable"):
		return fmt.Sprintf("is a manager listening at %s? check the address and port 2377", e.Remote)
	}
	return ""
}

func swarmFirstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Join joins the engine to the swarm of the manager at o.RemoteAddr.
// A node already in that swarm is reported, not rejoined; a node in another
// swarm is refused with a hint; nothing is sent to the engine until the
// options have been checked.
func Join(ctx context.Context, cli JoinAPI, o JoinOptions) (JoinResult, error) {
	res := JoinResult{Managers: []string{}}
	if err := o.Validate(); err != nil {
		return res, err
	}
	remote, _ := ManagerAddr(o.RemoteAddr)
	avail, _ := ParseAvailability(o.Availability)
	host := cli.DaemonHost()
	info, err := cli.Info(ctx)
	if err != nil {
		return res, ClassifyEngine(host, err)
	}
	action, err := DecideJoin(host, info.Swarm, remote)
	if err != nil {
		return res, err
	}
	res.ManagerAddr = remote
	if action == JoinNew {
		advertise, listen, err := resolveAddrs(host, info.Name, o.Interfaces, o.AdvertiseAddr, o.ListenAddr)
		if err != nil {
			return res, err
		}
		if listen == "" {
			listen = defaultListenAddr
		}
		err = cli.SwarmJoin(ctx, swarm.JoinRequest{
			ListenAddr: listen, AdvertiseAddr: advertise, RemoteAddrs: []string{remote},
			JoinToken: o.Token, Availability: avail,
		})
		if err != nil {
			err = ClassifyEngine(host, err)
			var ue *EngineUnreachableError
			if errors.As(err, &ue) {
				return res, err
			}
			return res, &SwarmJoinError{Remote: remote, Err: err}
		}
		res.Joined = true
		if info, err = cli.Info(ctx); err != nil {
			return res, fmt.Errorf("joined, but reading the node back failed: %w", ClassifyEngine(host, err))
		}
	}
	res.NodeID = info.Swarm.NodeID
	res.Role = roleOf(info.Swarm)
	res.Managers = managerAddrs(info.Swarm)
	return res, nil
}
