package swarm

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
)

// DefaultSwarmPort is the port managers listen on for the swarm's control
// plane (docker's default).
const DefaultSwarmPort = 2377

// HostInterface is a network interface and its addresses, as the address
// resolution sees it.
type HostInterface struct {
	Name  string
	Addrs []netip.Addr
}

// LocalInterfaces lists this machine's interfaces.
func LocalInterfaces() ([]HostInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]HostInterface, 0, len(ifs))
	for _, i := range ifs {
		hi := HostInterface{Name: i.Name}
		addrs, err := i.Addrs()
		if err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					if ad, ok := netip.AddrFromSlice(ipn.IP); ok {
						hi.Addrs = append(hi.Addrs, ad.Unmap())
					}
				}
			}
		}
		out = append(out, hi)
	}
	return out, nil
}

// AddrError is a bad --advertise-addr, --listen-addr or manager address:
// bad input, found before the engine is asked anything.
type AddrError struct {
	Flag  string // e.g. "--advertise-addr"
	Value string
	Msg   string
}

func (e *AddrError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.Flag, e.Value, e.Msg)
}

// SplitAddrPort splits ADDR[:PORT] where ADDR is an IP address, an
// interface name or (for remote managers) a host name. IPv6 addresses with
// a port are written [ADDR]:PORT. port is 0 when absent.
func SplitAddrPort(v string) (host string, port int, err error) {
	if v == "" {
		return "", 0, fmt.Errorf("empty address")
	}
	if a, perr := netip.ParseAddr(v); perr == nil {
		return a.String(), 0, nil // a bare IPv6 address has colons, no port
	}
	h, p, serr := net.SplitHostPort(v)
	if serr != nil {
		if strings.Contains(v, ":") {
			return "", 0, fmt.Errorf("want ADDRESS[:PORT]")
		}
		return v, 0, nil
	}
	n, perr := strconv.Atoi(p)
	if perr != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	if h == "" {
		return "", 0, fmt.Errorf("missing address before :%s", p)
	}
	return h, n, nil
}

func joinHostPort(host string, port int) string {
	if port == 0 {
		return host // a bare IPv6 address stays without brackets, as docker takes it
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ResolveAddr resolves ADDR[:PORT] where ADDR may be an interface name, the
// way the Docker daemon resolves --advertise-addr and --listen-addr: an
// interface stands for its one IPv4 address, or else its one global IPv6
// address; an interface with two of either is ambiguous. An IP address is
// returned as given. An unknown name is an *AddrError that lists the
// interfaces there are. allowUnspecified admits 0.0.0.0 (a listen address
// may be one, an advertised address may not).
func ResolveAddr(flag, value string, ifaces []HostInterface, allowUnspecified bool) (string, error) {
	host, port, err := SplitAddrPort(value)
	if err != nil {
		return "", &AddrError{Flag: flag, Value: value, Msg: err.Error()}
	}
	if a, perr := netip.ParseAddr(host); perr == nil {
		if a.IsUnspecified() && !allowUnspecified {
			return "", &AddrError{Flag: flag, Value: value, Msg: "must be a non-zero IP address or an interface name"}
		}
		return joinHostPort(a.String(), port), nil
	}
	for _, i := range ifaces {
		if i.Name != host {
			continue
		}
		a, msg := interfaceAddr(i)
		if msg != "" {
			return "", &AddrError{Flag: flag, Value: value, Msg: msg}
		}
		return joinHostPort(a.String(), port), nil
	}
	names := make([]string, 0, len(ifaces))
	for _, i := range ifaces {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	return "", &AddrError{Flag: flag, Value: value,
		Msg: fmt.Sprintf("no such interface or IP address (interfaces here: %s)", strings.Join(names, ", "))}
}

func interfaceAddr(i HostInterface) (netip.Addr, string) {
	var v4, v6 []netip.Addr
	for _, a := range i.Addrs {
		switch {
		case a.Is4():
			v4 = append(v4, a)
		case a.Is6() && !a.IsLinkLocalUnicast():
			v6 = append(v6, a)
		}
	}
	switch {
	case len(v4) == 1:
		return v4[0], ""
	case len(v4) > 1:
		return netip.Addr{}, fmt.Sprintf("interface %s has more than one IPv4 address (%s and %s): pass one of them", i.Name, v4[0], v4[1])
	case len(v6) == 1:
		return v6[0], ""
	case len(v6) > 1:
		return netip.Addr{}, fmt.Sprintf("interface %s has more than one IPv6 address (%s and %s): pass one of them", i.Name, v6[0], v6[1])
	}
	return netip.Addr{}, fmt.Sprintf("interface %s has no usable IPv4 or IPv6 address", i.Name)
}

// isLocalEngine reports whether the engine is reached through a local
// socket.
func isLocalEngine(host string) bool {
	return strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "npipe://") || host == ""
}

// sharesInterfaces reports whether this machine's interface names mean
// what they mean to the engine's daemon: a local socket, and the daemon
// reports this machine's hostname. A daemon behind a local socket but with
// a hostname of its own runs in other namespaces (docker-in-docker, a
// network namespace): there, as for a remote engine, an interface name is
// passed through for the daemon to resolve in its own namespace.
func sharesInterfaces(host, engineName string) bool {
	if !isLocalEngine(host) {
		return false
	}
	me, err := os.Hostname()
	return engineName == "" || err != nil || engineName == me
}

// ManagerAddr normalises the MANAGER_ADDR of `swarm join`: HOST[:PORT],
// with the swarm port when none is given.
func ManagerAddr(v string) (string, error) {
	host, port, err := SplitAddrPort(v)
	if err != nil {
		return "", &AddrError{Flag: "MANAGER_ADDR", Value: v, Msg: err.Error()}
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
		return "", &AddrError{Flag: "MANAGER_ADDR", Value: v, Msg: "must be the manager's address, not 0.0.0.0"}
	}
	if port == 0 {
		port = DefaultSwarmPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// resolveAddrs resolves interface names in --advertise-addr and
// --listen-addr to addresses, here, when the engine shares this machine's
// interfaces (a local socket on the same host); otherwise it passes them on
// for the daemon to resolve. list defaults to LocalInterfaces.
func resolveAddrs(host, engineName string, list func() ([]HostInterface, error), advertise, listen string) (string, string, error) {
	if !sharesInterfaces(host, engineName) || (advertise == "" && listen == "") {
		return advertise, listen, nil
	}
	if list == nil {
		list = LocalInterfaces
	}
	ifaces, err := list()
	if err != nil {
		return "", "", fmt.Errorf("list network interfaces: %w", err)
	}
	if advertise != "" {
		if advertise, err = ResolveAddr("--advertise-addr", advertise, ifaces, false); err != nil {
			return "", "", err
		}
	}
	if listen != "" {
		if listen, err = ResolveAddr("--listen-addr", listen, ifaces, true); err != nil {
			return "", "", err
		}
	}
	return advertise, listen, nil
}
