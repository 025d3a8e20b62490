package swarm

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestResolveAddr(t *testing.T) {
	ifaces := []HostInterface{
		{Name: "lo", Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
		{Name: "eth0", Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fe80::1")}},
		{Name: "eth1", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}},
		{Name: "v6only", Addrs: []netip.Addr{netip.MustParseAddr("fe80::9"), netip.MustParseAddr("fd00::9")}},
		{Name: "bare"},
	}
	tests := []struct {
		in, want, err string
		unspec        bool
	}{
		{in: "10.9.9.9", want: "10.9.9.9"},
		{in: "10.9.9.9:2400", want: "10.9.9.9:2400"},
		{in: "fd00::7", want: "fd00::7"},
		{in: "[fd00::7]:2400", want: "[fd00::7]:2400"},
		{in: "eth0", want: "192.0.2.2"},
		{in: "eth0:2400", want: "192.0.2.2:2400"},
		{in: "v6only", want: "fd00::9"},
		{in: "v6only:2400", want: "[fd00::9]:2400"},
		{in: "eth1", err: "interface eth1 has more than one IPv4 address (10.0.0.1 and 10.0.0.2): pass one of them"},
		{in: "bare", err: "interface bare has no usable IPv4 or IPv6 address"},
		{in: "eth9", err: "--advertise-addr eth9: no such interface or IP address (interfaces here: bare, eth0, eth1, lo, v6only)"},
		{in: "0.0.0.0", err: "must be a non-zero IP address"},
		{in: "0.0.0.0:2377", want: "0.0.0.0:2377", unspec: true},
		{in: "eth0:0", err: "port \"0\" is not a number from 1 to 65535"},
		{in: ":2377", err: "missing address"},
		{in: "a:b:c", err: "want ADDRESS[:PORT]"},
	}
	for _, tt := range tests {
		got, err := ResolveAddr("--advertise-addr", tt.in, ifaces, tt.unspec)
		if tt.err != "" {
			var ae *AddrError
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.As(err, &ae) {
				t.Errorf("ResolveAddr(%q) err = %v, want AddrError containing %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ResolveAddr(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestIsLocalEngine(t *testing.T) {
	for host, want := range map[string]bool{"unix:///var/run/docker.sock": true, "tcp://10.0.0.1:2376": false, "ssh://x": false, "": true} {
		if got := isLocalEngine(host); got != want {
			t.Errorf("isLocalEngine(%q) = %v", host, got)
		}
	}
}

func FuzzSplitAddrPort(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "10.0.0.1:2377", "eth0", "eth0:1", "[::1]:2377", "::1", ":1", "a:b:c", "[x]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := SplitAddrPort(s)
		if err != nil {
			return
		}
		if host == "" || port < 0 || port > 65535 {
			t.Fatalf("SplitAddrPort(%q) = %q, %d", s, host, port)
		}
		// ManagerAddr must accept what SplitAddrPort accepts (unless it is
		// the unspecified address) and produce a host:port.
		if a, err := netip.ParseAddr(host); err == nil && a.IsUnspecified() {
			return
		}
		if m, err := ManagerAddr(s); err != nil || !strings.Contains(m, ":") {
			t.Fatalf("ManagerAddr(%q) = %q, %v", s, m, err)
		}
	})
}

func TestSharesInterfaces(t *testing.T) {
	me, _ := os.Hostname()
	tests := []struct {
		host, name string
		want       bool
	}{
		{"unix:///var/run/docker.sock", me, true},
		{"unix:///var/run/docker.sock", "", true},
		{"unix:///tmp/lab/n1/docker.sock", "mctl-lab-n1", false}, // a daemon in its own namespaces
		{"tcp://10.0.0.1:2376", me, false},
	}
	for _, tt := range tests {
		if got := sharesInterfaces(tt.host, tt.name); got != tt.want {
			t.Errorf("sharesInterfaces(%q, %q) = %v", tt.host, tt.name, got)
		}
	}
}

// An engine in other namespaces resolves interface names itself: microctl
// passes them through instead of resolving them against its own machine.
func TestInitPassesInterfaceNamesToAForeignEngine(t *testing.T) {
	f := newFake()
	f.info.Name = "some-other-host"
	if _, err := Init(context.Background(), f, InitOptions{AdvertiseAddr: "eth7:2400", Interfaces: fixedIfaces}); err != nil {
		t.Fatal(err)
	}
	if f.initReq.AdvertiseAddr != "eth7:2400" {
		t.Errorf("advertise %q, want eth7:2400 passed through", f.initReq.AdvertiseAddr)
	}
}
