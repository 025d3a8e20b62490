package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microctl/microctl/internal/testenv"
)

var ageField = regexp.MustCompile(`"age_seconds": \d+,?`)

// proc is a background process a test started; Cleanup stops it (SIGTERM,
// then SIGKILL) by its own PID.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func start(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	name := bin[strings.LastIndex(bin, "/")+1:]
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("%s: %s", name, sc.Text())
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLine returns the first submatch of re in the process's log.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		case <-p.done:
			t.Fatalf("process exited before logging %s", re)
		case <-deadline:
			t.Fatalf("no log line matching %s", re)
		}
	}
}

func get(url, token string) (int, error) {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// eventually retries f every 100 ms until it is true; the deadline is a
// safety net against a hang, not a measurement.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var listenRe = regexp.MustCompile(`gateway listening on (\S+),`)

// TestKeyRotationUnderLoad: greeter and the gateway run as binaries; a Go
// client sends requests with tokens from `microctl key sign` (old and new
// alike) while `microctl key rotate` runs every second. Not one request
// may be refused.
func TestKeyRotationUnderLoad(t *testing.T) {
	agent := testenv.StartAgent(t)
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE="}
	rotations := 10
	if v, err := strconv.Atoi(os.Getenv("MICROCTL_E2E_ROTATIONS")); err == nil && v > 0 {
		rotations = v
	}
	if r := microctl(t, env, "key", "init", "--max-token-ttl", "10m"); r.Code != 0 {
		t.Fatalf("key init: %d %s", r.Code, r.Stderr)
	}
	start(t, env, binary(t, "examples/greeter"), "--server_address", "127.0.0.1:0", "--register_ttl", "10", "--register_interval", "5")
	gw := start(t, append(env, "GATEWAY_NO_REGISTER=1"), binary(t, "examples/gateway"), "--server_address", "127.0.0.1:0")
	url := "http://" + gw.waitLine(t, listenRe) + "/"

	sign := func() string {
		r := microctl(t, env, "key", "sign", "--sub", "e2e", "--ttl", "10m")
		if r.Code != 0 {
			t.Errorf("key sign: %d %s", r.Code, r.Stderr)
			return ""
		}
		return strings.TrimSpace(r.Stdout)
	}
	first := sign()
	eventually(t, "the gateway proxies a request with a token", func() bool {
		code, _ := get(url, first)
		return code == 200
	})
	if code, _ := get(url, ""); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := get(url, first+"x"); code != 401 {
		t.Fatalf("bad signature: %d, want 401", code)
	}

	var (
		mu     sync.Mutex
		tokens = []string{first}
		codes  sync.Map // status code -> *atomic.Int64
		total  atomic.Int64
		errs   atomic.Int64
	)
	count := func(code int) {
		v, _ := codes.LoadOrStore(code, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// Tokens keep coming from the ring as it rotates.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if tok := sign(); tok != "" {
				mu.Lock()
				tokens = append(tokens, tok)
				mu.Unlock()
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	// Clients use any token issued so far: the newest, and ones signed
	// by keys that have since been rotated out.
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				mu.Lock()
				tok := tokens[rand.IntN(len(tokens))]
				mu.Unlock()
				code, err := get(url, tok)
				total.Add(1)
				if err != nil {
					errs.Add(1)
					continue
				}
				count(code)
			}
		}()
	}
	tick := time.NewTicker(time.Second)
	for i := range rotations {
		<-tick.C
		if r := microctl(t, env, "key", "rotate"); r.Code != 0 {
			t.Errorf("rotation %d: exit %d: %s", i+1, r.Code, r.Stderr)
		}
	}
	<-tick.C
	tick.Stop()
	stop()
	wg.Wait()

	got := map[int]int64{}
	codes.Range(func(k, v any) bool { got[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("FIGURE: %d requests with %d distinct tokens during %d rotations (one a second): %d x 200, %d x 401, %d other, %d transport errors",
		total.Load(), len(tokens), rotations, got[200], got[401], total.Load()-got[200]-got[401]-errs.Load(), errs.Load())
	if got[401] != 0 {
		t.Errorf("%d requests were refused (401) during rotations", got[401])
	}
	if got[200] == 0 || got[200] != total.Load() {
		t.Errorf("status codes %v, transport errors %d: want every request answered 200", got, errs.Load())
	}
	r := microctl(t, env, "key", "show", "-o", "json")
	var ring struct {
		Generation int64 `json:"generation"`
		Keys       []struct{ State string }
	}
	if err := json.Unmarshal([]byte(r.Stdout), &ring); err != nil || ring.Generation != int64(1+rotations) {
		t.Fatalf("key show after %d rotations: %s (%v)", rotations, r.Stdout, err)
	}
	if r := microctl(t, env, "key", "verify", first); r.Code != 0 {
		t.Errorf("the first token no longer verifies: %s", r.Stderr)
	}

	// The gateway is not just waving tokens through: revoking the current
	// key turns its tokens away as soon as the gateway sees the change.
	last := sign()
	if r := microctl(t, env, "key", "rotate", "--revoke", "--yes"); r.Code != 0 {
		t.Fatalf("revoke: %s", r.Stderr)
	}
	eventually(t, "a revoked key's token is refused", func() bool {
		code, _ := get(url, last)
		return code == 401
	})
	if code, _ := get(url, first); code != 200 {
		t.Errorf("a token of a previous key: %d after revoking the current one", code)
	}
}

// TestKeyConcurrentRotateBinaries: 16 `microctl key rotate` processes at
// once. With the default lock wait all succeed, one after another; with
// --wait 0 the losers exit 1 saying nothing was written. The ring's
// generation counts exactly the successes.
func TestKeyConcurrentRotateBinaries(t *testing.T) {
	agent := testenv.StartAgent(t)
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=", "CONSUL_HTTP_TOKEN_FILE="}
	for _, tc := range []struct {
		name string
		args []string
	}{{"wait", nil}, {"no wait", []string{"--wait", "0"}}} {
		t.Run(tc.name, func(t *testing.T) {
			path := "micro/config/jwt-" + strings.ReplaceAll(tc.name, " ", "-")
			if r := microctl(t, env, "key", "init", "--path", path); r.Code != 0 {
				t.Fatal(r.Stderr)
			}
			results := make([]Result, 16)
			var wg sync.WaitGroup
			for i := range results {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i] = microctl(t, env, append([]string{"key", "rotate", "--path", path}, tc.args...)...)
				}()
			}
			wg.Wait()
			ok := 0
			for i, r := range results {
				switch {
				case r.Code == 0:
					ok++
				case tc.args == nil:
					t.Errorf("rotation %d: exit %d: %s", i, r.Code, r.Stderr)
				case r.Code != 1 || !strings.Contains(r.Stderr, "nothing was written") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0:
					t.Errorf("rotation %d lost badly: exit %d: %q", i, r.Code, r.Stderr)
				}
			}
			r := microctl(t, env, "key", "show", "--path", path, "-o", "json")
			var ring struct {
				Generation int `json:"generation"`
			}
			_ = json.Unmarshal([]byte(r.Stdout), &ring)
			if ok == 0 || ring.Generation != 1+ok {
				t.Fatalf("%d rotations succeeded, generation %d", ok, ring.Generation)
			}
			t.Logf("%d of 16 rotations went through", ok)
		})
	}
}

// TestKeyBadInput: what a person sees when something is wrong, one line
// each, with the exit code.
func TestKeyBadInput(t *testing.T) {
	agent := testenv.StartAgent(t, testenv.WithACL("deny"))
	root := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=" + agent.Token, "CONSUL_HTTP_TOKEN_FILE="}
	c := agent.Client(t, agent.Token)
	tok := agent.TokenWith(t, "ro", `key_prefix "micro/config/jwt/" { policy = "read" }`)
	readOnly := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CONSUL_HTTP_TOKEN=" + tok, "CONSUL_HTTP_TOKEN_FILE="}

	check := func(env []string, code int, want string, args ...string) Result {
		t.Helper()
		r := microctl(t, env, args...)
		if r.Code != code || !strings.Contains(r.Stderr, want) {
			t.Errorf("microctl %s: exit %d, stderr %q; want exit %d and %q", strings.Join(args, " "), r.Code, r.Stderr, code, want)
		}
		if lines := strings.Split(strings.TrimSpace(r.Stderr), "\n"); code != 0 && len(lines) != 1 {
			t.Errorf("microctl %s: %d lines on stderr", strings.Join(args, " "), len(lines))
		}
		t.Logf("$ microctl %s  -> exit %d: %s", strings.Join(args, " "), r.Code, strings.TrimSpace(r.Stderr))
		return r
	}
	check(root, 1, "error: no key ring at micro/config/jwt (create one with: microctl key init", "key", "show")
	check(root, 2, `unknown algorithm "PS256"`, "key", "init", "--alg", "PS256")
	check(root, 0, "", "key", "init")
	check(root, 1, "a key ring already exists at micro/config/jwt", "key", "init")
	check(root, 1, "--grace 5m0s is shorter than 1h0m0s", "key", "rotate", "--grace", "5m")

	// A read-only token can look and verify, not change; the error names
	// the path.
	check(readOnly, 0, "", "key", "show")
	check(readOnly, 1, "microctl/locks/micro/config/jwt", "key", "rotate")
	token := strings.TrimSpace(check(root, 0, "", "key", "sign").Stdout)
	check(readOnly, 0, "", "key", "verify", token)
	// The same payload and signature under a header naming kid "xx".
	check(root, 3, "token rejected: unknown kid", "key", "verify", "eyJhbGciOiJFZERTQSIsImtpZCI6Inh4In0."+strings.SplitN(token, ".", 2)[1])
	check(root, 3, `token rejected: alg "none" is never accepted`, "key", "verify", "eyJhbGciOiJub25lIiwia2lkIjoieCJ9.eyJleHAiOjk5OTk5OTk5OTl9.")

	// Private keys are never printed.
	for _, args := range [][]string{{"key", "show", "-o", "json"}, {"key", "show", "--jwks"}, {"key", "rotate", "-o", "json"}, {"key", "sign", "-o", "json"}} {
		r := check(root, 0, "", args...)
		if strings.Contains(r.Stdout+r.Stderr, "PRIVATE KEY") || strings.Contains(r.Stdout, `"d":`) {
			t.Errorf("microctl %v printed private key material", args)
		}
	}

	// A value go-config cannot read: reported by path, nothing changed.
	if _, err := c.API.KV().Put(&api.KVPair{Key: "micro/config/jwt/extra", Value: []byte("-----BEGIN PRIVATE KEY-----")}, nil); err != nil {
		t.Fatal(err)
	}
	// age_seconds follows the clock, not the ring: leave it out of the
	// comparison, or two reads a second apart differ.
	ringState := func() string {
		return ageField.ReplaceAllString(microctl(t, root, "key", "show", "-o", "json").Stdout, "")
	}
	before := ringState()
	check(root, 1, "KV micro/config/jwt/extra: not a JSON object; nothing was changed", "key", "rotate")
	if after := ringState(); after != before {
		t.Errorf("the ring changed after a refused rotation:\n--- before\n%s\n--- after\n%s", before, after)
	}
	_, _ = c.API.KV().Delete("micro/config/jwt/extra", nil)
	check(root, 0, "", "key", "rotate")
	check(root, 0, "", "key", "prune")
	r := check(root, 0, "", "key", "rollback", "-o", "json")
	if !strings.Contains(r.Stdout, `"op": "rollback"`) {
		t.Errorf("rollback -o json: %s", r.Stdout)
	}
}
