package cmd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/registry"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain error", errors.New("boom"), 1},
		{"wrapped plain", fmt.Errorf("deploy: %w", errors.New("boom")), 1},
		{"usage", cmdutil.Usagef("bad"), 2},
		{"wrapped usage", fmt.Errorf("x: %w", cmdutil.Usagef("bad")), 2},
		{"unhealthy", cmdutil.Unhealthy("2 checks failed"), 3},
		{"wrapped unhealthy", fmt.Errorf("x: %w", &cmdutil.UnhealthyError{}), 3},
		{"cancelled", context.Canceled, 130},
		{"unreachable consul", &registry.UnreachableError{Addr: "a", Err: errors.New("x")}, 1},
		{"silent", cmdutil.ErrSilent, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitCode(tt.err); got != tt.want {
				t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

// run executes microctl in-process with fake streams.
func run(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ios, _, out, errOut := cmdutil.Test()
	code = Run(ctx, cmdutil.NewFactory(ios), args)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "microctl"`},
		{[]string{"doctor", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"doctor", "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: must be table or json`},
		{[]string{"doctor", "extra-arg"}, "extra-arg"},
		{[]string{"doctor", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"version", "--output"}, "flag needs an argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, context.Background(), tt.args...)
			if code != cmdutil.ExitUsage {
				t.Errorf("exit code %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.wantErr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("error is %d lines, want one: %q", n+1, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
		})
	}
}

func TestHelpAndVersionExitZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"doctor", "--help"}, {"version"}, {"--version"}, {"completion", "bash"}} {
		if code, _, stderr := run(t, context.Background(), args...); code != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// A command that needs no Consul never reads its configuration or dials it;
// doctor does. Requests are counted at a fake Consul.
func TestConsulIsDialledOnlyWhenNeeded(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	t.Setenv("CONSUL_HTTP_ADDR", srv.Listener.Addr().String())
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")

	run(t, context.Background(), "version")
	run(t, context.Background(), "completion", "zsh")
	if n := hits.Load(); n != 0 {
		t.Fatalf("version/completion made %d requests to Consul", n)
	}
	run(t, context.Background(), "doctor")
	if hits.Load() == 0 {
		t.Fatal("doctor never reached Consul: the counter cannot see requests")
	}
}

func TestUnreachableIsOneActionableLineAndExit3(t *testing.T) {
	t.Setenv("CONSUL_HTTP_ADDR", "127.0.0.1:1")
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	code, stdout, _ := run(t, context.Background(), "doctor")
	if code != cmdutil.ExitUnhealthy {
		t.Fatalf("exit %d, want 3", code)
	}
	for _, want := range []string{
		"cannot reach Consul at 127.0.0.1:1: connection refused (set --consul-addr or CONSUL_HTTP_ADDR)",
		"cannot reach the Docker Engine at tcp://127.0.0.1:1",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestInterruptedExits130(t *testing.T) {
	// A Consul that never answers: doctor blocks until the context ends.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	t.Setenv("CONSUL_HTTP_ADDR", srv.Listener.Addr().String())
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { cancel() }()
	code, _, stderr := run(t, ctx, "doctor", "--timeout", "1m")
	if code != cmdutil.ExitInterrupted || !strings.Contains(stderr, "interrupted") {
		t.Fatalf("exit %d stderr %q, want 130 and 'interrupted'", code, stderr)
	}
}
