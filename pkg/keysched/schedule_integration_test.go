package keysched_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/microctl/microctl/internal/testenv"
	"github.com/microctl/microctl/pkg/keys"
	"github.com/microctl/microctl/pkg/keysched"
)

// TestScheduleRunsRotator deploys the rotator as a Swarm service against a
// private Consul agent (the service on the host network reaches it on
// loopback), sees it lead and rotate, then removes it and its secrets.
func TestScheduleRunsRotator(t *testing.T) {
	cli := testenv.Manager(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := cli.ImageInspect(ctx, keysched.DefaultImage); err != nil {
		testenv.Missing(t, "no %s image (scripts/build-images.sh builds it): %v", keysched.DefaultImage, err)
	}
	agent := testenv.StartAgent(t)
	c := agent.Client(t, "")
	s, err := keys.NewStore(c, keys.WithPath("sched/jwt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Init(ctx, keys.InitOptions{RotationPeriod: 8 * time.Second}); err != nil {
		t.Fatal(err)
	}
	stack := fmt.Sprintf("kstest%d", rand.IntN(1_000_000))
	t.Cleanup(func() { _, _ = keysched.Remove(context.Background(), cli, stack) })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	res, err := keysched.Schedule(ctx, cli, keysched.Options{Stack: stack, Path: "sched/jwt", Every: 4 * time.Second,
		Network: "host", Consul: keysched.ConsulSecret{Address: agent.Addr}, JWKSPort: uint32(port), MaxAge: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ring, err := s.Ring(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Rotator(ctx, ring)
		if err != nil {
			t.Fatal(err)
		}
		if st.Running && ring.Generation >= 2 {
			t.Logf("rotator %s every %s rotated the ring to generation %d", st.Who, st.Every, ring.Generation)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service never rotated: running %v, generation %d", st.Running, ring.Generation)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The JWKS service answers on its host port with the ring's JWKS.
	url := fmt.Sprintf("http://127.0.0.1:%d/.well-known/jwks.json", port)
	for {
		doc, _ := s.JWKSDoc(ctx)
		if res, err := http.Get(url); err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 && string(b) == string(doc) && res.Header.Get("ETag") != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the JWKS service never served the ring's JWKS at %s", url)
		}
		time.Sleep(500 * time.Millisecond)
	}
	rm, err := keysched.Remove(ctx, cli, stack)
	if err != nil || rm.Action != "removed" || rm.JWKS == "" || len(rm.Removed) != 1 {
		t.Fatalf("remove: %+v, %v", rm, err)
	}
	svcs, _ := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("name", stack+"_"))})
	secs, _ := cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", keysched.LabelRotator+"="+stack))})
	if len(svcs) != 0 || len(secs) != 0 {
		t.Fatalf("left behind: %d services, %d secrets", len(svcs), len(secs))
	}
}
