package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/testenv"
)

// TestKeyProductionBinary: the issue-16 commands as a user runs them: a
// sealed ring refuses to change without its KEK in one line and nothing
// changes; key serve answers with caching headers and exits 0 on SIGTERM;
// key rotate --every exits 0 on SIGTERM; key log lists the changes.
func TestKeyProductionBinary(t *testing.T) {
	agent := testenv.StartAgent(t)
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=", "MICROCTL_KEK_FILE="}
	dir := t.TempDir()
	kek := filepath.Join(dir, "kek")
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	if err := os.WriteFile(kek, []byte(base64.StdEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(code int, want string, args ...string) Result {
		t.Helper()
		r := microctl(t, env, args...)
		if r.Code != code || !strings.Contains(r.Stderr+r.Stdout, want) {
			t.Fatalf("microctl %s: exit %d\nstdout %s\nstderr %s\nwant exit %d and %q", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr, code, want)
		}
		if code != 0 && strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
			t.Fatalf("microctl %s: more than one line on stderr: %q", strings.Join(args, " "), r.Stderr)
		}
		if strings.Contains(r.Stderr, "goroutine ") {
			t.Fatalf("a Go stack trace: %s", r.Stderr)
		}
		return r
	}
	run(0, "initialised", "key", "init", "--rotation-period", "10s")
	run(0, "sealed the key ring", "key", "seal", "--kek-file", kek)
	before := microctl(t, env, "key", "show", "-o", "json").Stdout
	run(1, "is sealed (KEK id", "key", "rotate")
	run(1, "is sealed (KEK id", "key", "sign")
	if after := microctl(t, env, "key", "show", "-o", "json").Stdout; ageField.ReplaceAllString(after, "") != ageField.ReplaceAllString(before, "") {
		t.Fatalf("a refused command changed the ring")
	}
	env[len(env)-1] = "MICROCTL_KEK_FILE=" + kek
	run(0, "rotated", "key", "rotate")
	if tok := strings.TrimSpace(run(0, "", "key", "sign").Stdout); strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q", tok)
	}
	run(2, "cannot be sealed", "key", "init", "--legacy", "--path", "micro/config/jwt-legacy")

	// key serve: headers, 304, SIGTERM exits 0.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	serve := exec.Command(binary(t, "."), "key", "serve", "--listen", addr, "--max-age", "4s")
	serve.Env = append(os.Environ(), env...)
	var serveErr lockedBuffer
	serve.Stderr = &serveErr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr + "/.well-known/jwks.json"
	var res *http.Response
	for i := 0; i < 100; i++ {
		var err error
		if res, err = http.Get(url); err == nil && res.StatusCode == 200 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res == nil || res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public, max-age=") {
		t.Fatalf("GET %s: %+v\n%s", url, res, serveErr.String())
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	if res2, err := http.DefaultClient.Do(req); err != nil || res2.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %v %v", res2, err)
	}
	_ = serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("key serve after SIGTERM: %v\n%s", err, serveErr.String())
	}

	// The rotator: starts, leads, exits 0 on SIGTERM.
	rot := exec.Command(binary(t, "."), "key", "rotate", "--every", "5s")
	rot.Env = append(os.Environ(), env...)
	var rotErr lockedBuffer
	rot.Stderr = &rotErr
	if err := rot.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(rotErr.String(), "leader:") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	_ = rot.Process.Signal(syscall.SIGTERM)
	if err := rot.Wait(); err != nil || !strings.Contains(rotErr.String(), "stopped") {
		t.Fatalf("rotator after SIGTERM: %v\n%s", err, rotErr.String())
	}
	log := run(0, "seal", "key", "log")
	for _, op := range []string{"init", "seal", "rotate"} {
		if !strings.Contains(log.Stdout, op) {
			t.Fatalf("key log lacks %s:\n%s", op, log.Stdout)
		}
	}
}

// TestGatewayVerifiesFromJWKSURL: the example gateway with --jwks_url
// follows `microctl key serve` instead of Consul; after each rotation a
// token signed by the new current key is accepted at once, because that
// key was published (and cached) a rotation earlier.
func TestGatewayVerifiesFromJWKSURL(t *testing.T) {
	agent := testenv.StartAgent(t)
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE=", "MICROCTL_KEK_FILE="}
	if r := microctl(t, env, "key", "init", "--max-token-ttl", "10m", "--rotation-period", "10s"); r.Code != 0 {
		t.Fatalf("key init: %d %s", r.Code, r.Stderr)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	jwksAddr := ln.Addr().String()
	ln.Close()
	start(t, env, binary(t, "."), "key", "serve", "--listen", jwksAddr, "--max-age", "4s")
	start(t, env, binary(t, "examples/greeter"), "--server_address", "127.0.0.1:0", "--register_ttl", "10", "--register_interval", "5")
	gw := start(t, append(env, "GATEWAY_NO_REGISTER=1", "GATEWAY_JWKS_URL=http://"+jwksAddr+"/.well-known/jwks.json"),
		binary(t, "examples/gateway"), "--server_address", "127.0.0.1:0")
	url := "http://" + gw.waitLine(t, listenRe) + "/"
	sign := func() string {
		r := microctl(t, env, "key", "sign", "--sub", "e2e", "--ttl", "10m")
		if r.Code != 0 {
			t.Fatalf("key sign: %d %s", r.Code, r.Stderr)
		}
		return strings.TrimSpace(r.Stdout)
	}
	first := sign()
	eventually(t, "the gateway accepts a token through the JWKS URL", func() bool {
		code, _ := get(url, first)
		return code == 200
	})
	for i := range 2 {
		time.Sleep(5 * time.Second) // longer than the largest max-age: the cache has refreshed
		if r := microctl(t, env, "key", "rotate"); r.Code != 0 {
			t.Fatalf("rotate: %d %s", r.Code, r.Stderr)
		}
		tok := sign()
		if code, err := get(url, tok); code != 200 {
			t.Fatalf("rotation %d: a token of the new current key got %d (%v): the gateway did not know the key", i+1, code, err)
		}
		if code, _ := get(url, first); code != 200 {
			t.Fatalf("rotation %d: the first token got %d", i+1, code)
		}
	}
}
