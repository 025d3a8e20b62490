package cmd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/testenv"
)

// TestTimeoutReachesEveryRequest: against a Consul (and an engine) that
// accept and never answer, the bound in force is the global --timeout or
// MICROCTL_TIMEOUT capped by the command's own --timeout, wherever on the
// line --timeout is written, and the command ends with one line naming the
// address and that bound. (Before, `microctl --timeout 2s call ...` landed
// in call's own flag and Consul was given the default 30s.)
func TestTimeoutReachesEveryRequest(t *testing.T) {
	addr := testenv.SilentServer(t)
	tests := []struct {
		name     string
		env      string
		args     []string
		code     int
		stderr   string // the whole of stderr, one line
		stdoutIn string
	}{
		{"registry ls, global flag", "", []string{"--timeout", "1s", "registry", "ls"}, cmdutil.ExitError,
			"error: Consul at " + addr + " did not answer within 1s (check the address; --timeout or MICROCTL_TIMEOUT sets how long to wait)\n", ""},
		{"call, global flag before the command", "", []string{"--timeout", "1s", "call", "greeter", "Greeter.Hello"}, cmdutil.ExitError,
			"error: Consul at " + addr + " did not answer within 1s (check the address; --timeout or MICROCTL_TIMEOUT sets how long to wait)\n", ""},
		{"call, its own --timeout", "", []string{"call", "greeter", "Greeter.Hello", "--timeout", "1s"}, cmdutil.ExitError,
			"error: Consul at " + addr + " did not answer within 1s (check the address; --timeout or MICROCTL_TIMEOUT sets how long to wait)\n", ""},
		{"call, MICROCTL_TIMEOUT under its own default", "1s", []string{"call", "greeter", "Greeter.Hello"}, cmdutil.ExitError,
			"error: Consul at " + addr + " did not answer within 1s (check the address; --timeout or MICROCTL_TIMEOUT sets how long to wait)\n", ""},
		// doctor reports failed checks on stdout and exits 3, as it does
		// for any failed check; the bound is what each check says.
		{"doctor, global flag before the command", "", []string{"--timeout", "1s", "doctor"}, cmdutil.ExitUnhealthy,
			"", "Consul at " + addr + " did not answer within 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("CONSUL_HTTP_ADDR", addr)
			t.Setenv("DOCKER_HOST", "tcp://"+addr)
			t.Setenv(cmdutil.TimeoutEnv, tt.env)
			// A hang detector, not a measurement: the default bound is 30s.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code, stdout, stderr := run(t, ctx, tt.args...)
			if ctx.Err() != nil {
				t.Fatalf("still waiting after 20s: the 1s bound did not reach the requests (exit %d, stderr %q)", code, stderr)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if stderr != tt.stderr {
				t.Errorf("stderr = %q\nwant     %q", stderr, tt.stderr)
			}
			if tt.stdoutIn != "" && !strings.Contains(stdout, tt.stdoutIn) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdoutIn, stdout)
			}
		})
	}
}
