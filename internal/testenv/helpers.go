package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/hashicorp/consul/api"
)

// UniqueName returns prefix with a random suffix: the test engine and the
// shared Consul agent are used by several packages (and engineers) at
// once, so every stack, network and service a test makes carries one.
func UniqueName(prefix string) string {
	return fmt.Sprintf("%s-%06x", prefix, rand.IntN(1<<24))
}

// FreePort returns a port on 127.0.0.1 that was free for both TCP and UDP
// a moment ago (Serf listens on both).
func FreePort(t testing.TB) int { t.Helper(); return freePort(t) }

// FreeSubnet picks a /24 in 10.200.0.0-10.249.255.0 that overlaps no
// network the engine has.
func FreeSubnet(t testing.TB, cli client.APIClient) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var used []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
next:
	for range 1000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + rand.IntN(50)), byte(rand.IntN(256)), 0}), 24)
		for _, u := range used {
			if u.Overlaps(p) {
				continue next
			}
		}
		return p.String()
	}
	t.Fatal("no free subnet in 10.200.0.0/16-10.249.0.0/16")
	return ""
}

// SilentServer listens on 127.0.0.1, accepts every connection and never
// reads or answers: a peer that hangs. It returns host:port and closes
// everything when the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never read or written
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TokenWith creates, with the agent's management token, a policy named
// name with rules and a token holding only that policy, and returns the
// token's secret. The agent must have been started WithACL.
func (a *Agent) TokenWith(t testing.TB, name, rules string) string {
	t.Helper()
	acl := a.Client(t, a.Token).API.ACL()
	p, _, err := acl.PolicyCreate(&api.ACLPolicy{Name: name, Rules: rules}, nil)
	if err != nil {
		t.Fatalf("create policy %s: %v", name, err)
	}
	tok, _, err := acl.TokenCreate(&api.ACLToken{Description: name, Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		t.Fatalf("create token for %s: %v", name, err)
	}
	return tok.SecretID
}
