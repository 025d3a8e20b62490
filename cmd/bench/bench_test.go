package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/microctl/microctl/cmd"
	cmdbench "github.com/microctl/microctl/cmd/bench"
	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/testenv"
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
		{"tls flags with --tcp", []string{"bench", "--tcp", "-b", "x", "-k", "127.0.0.1:1"}, 2, "do not go with --tcp"},
		{"cert without key", []string{"bench", "--cert", "c.pem", "https://x/"}, 2, "--cert and --key go together"},
		{"bad cacert", []string{"bench", "--cacert", "/nonexistent.pem", "https://x/"}, 2, "--cacert: open /nonexistent.pem"},
		{"serve key without tls", []string{"serve", "--cert", "c", "--key", "k"}, 2, "go with --tls"},
		{"bad header", []string{"bench", "-H", "nocolon", "http://x/"}, 2, "Name: value"},
		{"two bodies", []string{"bench", "-b", "x", "--body-file", "f", "http://x/"}, 2, "cannot be used together"},
		{"tcp without payload", []string{"bench", "--tcp", "127.0.0.1:1"}, 2, "payload"},
		{"two URLs", []string{"bench", "http://a/", "http://b/"}, 2, "accepts at most 1 arg"},
		{"bare --jwt, Consul down", []string{"bench", "--consul-addr", closed, "--jwt", "-d", "1s", "http://" + closed + "/"}, 1, "cannot reach Consul at " + closed},
		{"unreachable", []string{"bench", "-d", "30s", "http://" + closed + "/"}, 1, "cannot connect to " + closed + ": connection refused"},
		{"serve negative body", []string{"serve", "--body-size", "-1"}, 2, "--body-size"},
		{"-n 0", []string{"bench", "-n", "0", "http://" + closed + "/"}, 2, "-n/--requests must be at least 1"},
		{"report path", []string{"bench", "-d", "30s", "--report", "/nonexistent/r.html", "http://" + closed + "/"}, 2, "--report: open /nonexistent/r.html"},
		{"hdr path", []string{"bench", "-d", "30s", "--hdr", "/nonexistent/h.hgrm", "http://" + closed + "/"}, 2, "--hdr: open /nonexistent/h.hgrm"},
		{"serve bad port", []string{"serve", "--addr", "127.0.0.1:99999"}, 2, "port \"99999\" is not a number from 0 to 65535"},
		{"serve no port", []string{"serve", "--addr", "127.0.0.1"}, 2, "missing port"},
		{"secret in a path URL", []string{"bench", "/p?access_token=hunter2"}, 2, "access_token=REDACTED"},
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
	got, err := cmdtest.Parse(t, cmdbench.NewCmdBench, "http://h/p", "-c", "7", "-d", "3s", "-n", "9", "-t", "2", "-m", "post", "-H", "A: 1", "-H", "B: 2",
		"-b", "x", "--timeout", "1s", "--pipeline", "4", "-R", "100", "--hdr", "h", "--report", "r", "-o", "json", "--jwt=tok")
	if err != nil {
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

// TestNoRequestSucceededExits1: a run that completed nothing is a failure,
// whatever the reason, even with no error counted.
func TestNoRequestSucceededExits1(t *testing.T) {
	addr := testenv.SilentServer(t)
	for _, args := range [][]string{
		{"bench", "-d", "300ms", "-c", "2", "http://" + addr + "/"},
		{"bench", "--tcp", "-b", "ping", "-d", "300ms", "-c", "2", addr},
	} {
		t.Run(args[1], func(t *testing.T) {
			code, stdout, stderr := microctl(t, args...)
			if code != 1 {
				t.Errorf("exit %d, want 1 (stderr %q)", code, stderr)
			}
			if !strings.Contains(stderr, "error: no request succeeded") || !strings.Contains(stderr, "did not answer") {
				t.Errorf("stderr %q", stderr)
			}
			if !strings.Contains(stdout, "requests   0") {
				t.Errorf("the result is not printed: %q", stdout)
			}
		})
	}
}

// TestResultPrintedWhenFileFails: /dev/full opens for writing and then
// refuses every byte; the measurement is still printed.
func TestResultPrintedWhenFileFails(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	code, stdout, stderr := microctl(t, "bench", "-n", "200", "-c", "2", "--report", "/dev/full")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stdout, "requests   200") {
		t.Errorf("finished run not printed: %q", stdout)
	}
	if !strings.Contains(stderr, "error: --report /dev/full") {
		t.Errorf("stderr %q", stderr)
	}
}

// TestOutputFileNotCreatedOnRefusedRun: a run refused before it started
// leaves no empty file behind.
func TestOutputFileNotCreatedOnRefusedRun(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.html")
	code, _, _ := microctl(t, "bench", "-d", "30s", "--report", report, "http://"+freeAddr(t)+"/")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if _, err := os.Stat(report); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", report, err)
	}
}

// TestSecretsRedacted: credentials in headers and the query string reach
// neither the table, nor the JSON, nor the HTML report.
func TestSecretsRedacted(t *testing.T) {
	srv, err := bench.NewServer(bench.WithServerAddr("127.0.0.1:0"), bench.WithServerLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	url := "http://" + srv.Addr().String() + "/p?user=bob&api_key=S3CRET1&access_token=S3CRET2"
	headers := []string{"-H", "X-Api-Key: S3CRET3", "-H", "X-Auth-Token: S3CRET4", "-H", "Cookie: S3CRET5", "-H", "X-Visible: yes"}
	for _, out := range []string{"table", "json"} {
		report := filepath.Join(t.TempDir(), "r.html")
		args := append([]string{"bench", "-n", "20", "-c", "1", "-o", out, "--report", report, url}, headers...)
		code, stdout, stderr := microctl(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		html, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{"stdout": stdout, "stderr": stderr, "report": string(html)} {
			if strings.Contains(text, "S3CRET") {
				t.Errorf("-o %s: %s shows a secret:\n%s", out, name, text)
			}
		}
		if out == "json" && (!strings.Contains(stdout, "user=bob") || !strings.Contains(stdout, "X-Visible: yes")) {
			t.Errorf("-o json lost what is not a secret:\n%s", stdout)
		}
	}
}

// TestFDLimit runs bench in a child process whose hard limit on open
// files is too low for the run: one error line, exit 1, no crash.
func TestFDLimit(t *testing.T) {
	if os.Getenv("MICROCTL_FDLIMIT_CHILD") == "1" {
		rl := syscall.Rlimit{Cur: 64, Max: 64}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := microctl(t, "bench", "-c", "500", "-d", "1s")
		fmt.Printf("CODE=%d\nSTDERR=%s", code, stderr)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFDLimit$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MICROCTL_FDLIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "CODE=1\n") || !strings.Contains(s, "needs about 1") || !strings.Contains(s, "may open only 64") {
		t.Errorf("child output:\n%s", s)
	}
	if strings.Contains(s, "goroutine ") || strings.Contains(s, "fatal error") {
		t.Errorf("the runtime crashed:\n%s", s)
	}
}

// TestSLO: limits are listed with their measured value and verdict in
// every output; a failed one exits 3; --slo-abort stops the run early.
func TestSLO(t *testing.T) {
	code, stdout, stderr := microctl(t, "bench", "-n", "300", "-c", "2", "--slo", "p99 < 10s", "--slo", "errors < 1%")
	if code != 0 {
		t.Fatalf("passing limits: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"SLO", "p99 < 10s", "errors < 1%", "pass"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = microctl(t, "bench", "-n", "300", "-c", "2", "-o", "json", "--slo", "rps > 1e12", "--slo", "errors < 1")
	if code != 3 {
		t.Errorf("failing limit: exit %d, want 3 (stderr %q)", code, stderr)
	}
	var res struct {
		SLO []bench.SLOResult `json:"slo"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.SLO) != 2 || res.SLO[0].Pass || res.SLO[0].Metric != "rps" || res.SLO[0].Measured <= 0 || !res.SLO[1].Pass {
		t.Errorf("slo in JSON: %+v", res.SLO)
	}
	if !strings.Contains(stderr, "1 of 2 --slo limits failed") {
		t.Errorf("stderr %q", stderr)
	}

	// Every response is a 500: non2xx < 5 is broken after the fifth.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	code, stdout, stderr = microctl(t, "bench", "-n", "1000000", "-c", "1", "-o", "json", "--slo", "non2xx < 5", "--slo-abort", srv.URL+"/")
	if code != 3 {
		t.Errorf("abort: exit %d, want 3 (stderr %q)", code, stderr)
	}
	var ab bench.Result
	if err := json.Unmarshal([]byte(stdout), &ab); err != nil {
		t.Fatal(err)
	}
	if ab.SLOAbort == "" || !strings.Contains(ab.SLOAbort, "non2xx < 5 can no longer be met") || ab.Requests >= 1000000 {
		t.Errorf("not stopped early: slo_abort %q, %d requests", ab.SLOAbort, ab.Requests)
	}
	if code, _, stderr := microctl(t, "bench", "--slo", "p99 > 1ms"); code != 2 || !strings.Contains(stderr, "upper bound") {
		t.Errorf("bad --slo: exit %d, %q", code, stderr)
	}
	if code, _, _ := microctl(t, "bench", "--slo-abort"); code != 2 {
		t.Errorf("--slo-abort alone: exit %d, want 2", code)
	}
}

func TestRampAndStagesFlags(t *testing.T) {
	stages := filepath.Join(t.TempDir(), "stages")
	if err := os.WriteFile(stages, []byte("# steps\n100 1s\n0:300 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		args []string
		msg  string
	}{
		{[]string{"-R", "0:100"}, "give its length with --ramp"},
		{[]string{"-R", "100", "--ramp", "1s"}, "--ramp goes with -R START:END"},
		{[]string{"-R", "0:100", "--ramp", "20s", "-d", "10s"}, "longer than -d"},
		{[]string{"-R", "x"}, "not a number"},
		{[]string{"--stages", stages, "-R", "5"}, "cannot be used together"},
		{[]string{"--stages", stages, "-d", "5s"}, "the stages set the duration"},
		{[]string{"--stages", "/nonexistent"}, "--stages: open"},
		{[]string{"-R", "0:0", "--ramp", "1s"}, "sends no request"},
	}
	for _, tc := range bad {
		code, _, stderr := microctl(t, append([]string{"bench"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
	code, stdout, stderr := microctl(t, "bench", "--stages", stages, "-c", "4", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	// 100 + 150 requests due over the two seconds.
	if res.Sent < 247 || res.Sent > 253 || len(res.Timeline) != 2 || res.Timeline[1].TargetRPS != 150 || len(res.Settings.Stages) != 2 {
		t.Errorf("sent %d, timeline %+v, stages %+v", res.Sent, res.Timeline, res.Settings.Stages)
	}
}

func TestTargetsFlags(t *testing.T) {
	dir := t.TempDir()
	paths := filepath.Join(dir, "paths")
	if err := os.WriteFile(paths, []byte("GET /a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--targets", paths}, "is a path: give full URLs, or --service NAME"},
		{[]string{"--targets", paths, "http://h/"}, "leave out the URL argument"},
		{[]string{"--targets", paths, "-m", "POST"}, "leave out -m"},
		{[]string{"--random"}, "--random goes with --targets"},
		{[]string{"--targets", "/nonexistent"}, "--targets: open"},
		{[]string{"--targets", paths, "--tcp", "-b", "x", "127.0.0.1:1"}, "does not go with --tcp"},
	} {
		code, _, stderr := microctl(t, append([]string{"bench"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
	srv, err := bench.NewServer(bench.WithServerAddr("127.0.0.1:0"), bench.WithServerLoops(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(context.Background())
	u := "http://" + srv.Addr().String()
	targets := filepath.Join(dir, "targets")
	body := filepath.Join(dir, "body.json")
	if err := os.WriteFile(body, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(targets, []byte("GET "+u+"/a?api_key=S3CRET\n\nPOST "+u+"/b\n@"+body+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := microctl(t, "bench", "--targets", targets, "-n", "100", "-c", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"TARGET", "GET " + u + "/a?api_key=REDACTED", "POST " + u + "/b", "200:50"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "S3CRET") {
		t.Errorf("secret shown:\n%s", stdout)
	}
}

func TestHTTP2Flags(t *testing.T) {
	srv := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "hi")
	}), &http2.Server{}))
	defer srv.Close()
	code, stdout, stderr := microctl(t, "bench", "--http2", "--streams", "8", "-n", "400", "-c", "2", "-o", "json", srv.URL+"/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res bench.Result
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.Requests != 400 || res.Settings.Protocol != "h2c" || res.Settings.Streams != 8 {
		t.Errorf("requests %d, settings %+v", res.Requests, res.Settings)
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--streams", "4"}, "--streams goes with --http2"},
		{[]string{"--http2", "--pipeline", "2"}, "does not pipeline"},
		{[]string{"--http2", "--streams", "0"}, "at least 1"},
	} {
		code, _, stderr := microctl(t, append([]string{"bench"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("%v: exit %d, %q", tc.args, code, stderr)
		}
	}
}
