package bench_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/cmd"
	cmdbench "github.com/microctl/microctl/cmd/bench"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/pkg/bench"
)

// microctl runs the command line and returns its exit code and output.
func microctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := cmdutil.Test()
	f := cmdutil.NewFactory(ios)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := cmd.Run(ctx, f, args)
	return code, out.String(), errOut.String()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBadInput(t *testing.T) {
	closed := freeAddr(t)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"zero connections", []string{"bench", "-c", "0"}, 2, "-c/--connections must be at least 1"},
		{"bad duration", []string{"bench", "-d", "soon"}, 2, "invalid argument"},
		{"unknown flag", []string{"bench", "--frobnicate"}, 2, "unknown flag"},
		{"bad URL", []string{"bench", "ftp://x/"}, 2, "scheme"},
		{"https", []string{"bench", "https://x/"}, 2, "https is not supported"},
		{"bad header", []string{"bench", "-H", "nocolon", "http://x/"}, 2, "Name: value"},
		{"two bodies", []string{"bench", "-b", "x", "--body-file", "f", "http://x/"}, 2, "cannot be used together"},
		{"tcp without payload", []string{"bench", "--tcp", "127.0.0.1:1"}, 2, "payload"},
		{"two URLs", []string{"bench", "http://a/", "http://b/"}, 2, "accepts at most 1 arg"},
		{"bare --jwt, Consul down", []string{"bench", "--consul-addr", closed, "--jwt", "-d", "1s", "http://" + closed + "/"}, 1, "cannot reach Consul at " + closed},
		{"unreachable", []string{"bench", "-d", "30s", "http://" + closed + "/"}, 1, "cannot connect to " + closed + ": connection refused"},
		{"serve negative body", []string{"serve", "--body-size", "-1"}, 2, "--body-size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := microctl(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "error: ") || !strings.Contains(last, tc.msg) {
				t.Errorf("last stderr line %q, want an error line containing %q", last, tc.msg)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	var got *cmdbench.Options
	c := cmdbench.NewCmdBench(cmdutil.NewFactory(ios), func(_ context.Context, o *cmdbench.Options) error {
		got = o
		return nil
	})
	c.SetArgs([]string{"http://h/p", "-c", "7", "-d", "3s", "-n", "9", "-t", "2", "-m", "post", "-H", "A: 1", "-H", "B: 2",
		"-b", "x", "--timeout", "1s", "--pipeline", "4", "-R", "100", "--hdr", "h", "--report", "r", "-o", "json", "--jwt=tok"})
	if err := c.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.URL != "http://h/p" || got.Connections != 7 || got.Duration != 3*time.Second || got.Requests != 9 ||
		got.Loops != 2 || got.Method != "post" || len(got.Headers) != 2 || got.Body != "x" || got.Timeout != time.Second ||
		got.Pipeline != 4 || got.Rate != 100 || got.HDRFile != "h" || got.ReportFile != "r" || !got.Output.JSON() || got.JWT != "tok" {
		t.Fatalf("options %+v", got)
	}
}

// TestBuiltInTarget is the first thing a new user runs: no URL.
func TestBuiltInTarget(t *testing.T) {
	dir := t.TempDir()
	report, hgrm := filepath.Join(dir, "r.html"), filepath.Join(dir, "h.hgrm")
	code, stdout, stderr := microctl(t, "bench", "-d", "300ms", "-c", "4", "-o", "json", "--report", report, "--hdr", hgrm)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "built-in target") {
		t.Errorf("stderr does not say it uses the built-in target: %q", stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	// The documented, stable field names.
	for _, k := range []string{"engine", "mode", "targets", "settings", "elapsed_s", "connects", "requests", "requests_sent",
		"requests_per_sec", "bytes_read", "bytes_written", "bytes_read_per_sec", "latency", "status", "errors", "interrupted"} {
		if _, ok := res[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	lat := res["latency"].(map[string]any)
	for _, k := range []string{"count", "min_us", "mean_us", "stdev_us", "p50_us", "p75_us", "p90_us", "p99_us", "p99_9_us", "max_us"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency lacks %q", k)
		}
	}
	errs := res["errors"].(map[string]any)
	for _, k := range []string{"connect", "read", "write", "timeout", "parse", "closed", "total"} {
		if _, ok := errs[k]; !ok {
			t.Errorf("errors lacks %q", k)
		}
	}
	for _, f := range []string{report, hgrm} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}

func TestTableOutputAndNoProgressWhenPiped(t *testing.T) {
	srv, err := bench.NewServer(bench.WithServerAddr("127.0.0.1:0"), bench.WithServerLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	code, stdout, stderr := microctl(t, "bench", "-n", "500", "-c", "5", "-R", "5000", "http://"+srv.Addr().String()+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"requests   500", "corrected", "uncorrected", "STATUS", "200", "errors     0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("a redrawn progress line on a non-terminal stderr: %q", stderr)
	}
}
