package e2e

import (
	"strings"
	"testing"

	"github.com/microctl/microctl/internal/testenv"
)

// TestImagePushBadInput: mistakes are usage errors (exit 2) on one line,
// and an image the local engine lacks is named before anything is sent.
func TestImagePushBadInput(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"image", "push", "app:1"}, 2, "say where to: --to ENGINE or --all-nodes"},
		{[]string{"image", "push", "app:1", "--to", "http://10.0.0.1"}, 2, "want unix://, tcp:// or ssh://user@host"},
		{[]string{"image", "push", "app:1", "--all-nodes", "--engine-url", "ssh://{ip}"}, 2, "unknown placeholder {ip}"},
		{[]string{"bench", "http://127.0.0.1:1/", "--workers", "3", "-c", "2"}, 2, "-c 2 cannot be shared by 3 workers"},
		{[]string{"deploy", "-f", "x.yml", "--engine-url", "tcp://{addr}:2375"}, 2, "--engine-url goes with --push-images"},
	}
	for _, tt := range tests {
		r := microctl(t, nil, tt.args...)
		if r.Code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s%s", tt.args, r.Code, tt.code, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stderr, tt.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 {
			t.Errorf("%v: stderr %q, want one line containing %q", tt.args, r.Stderr, tt.want)
		}
	}
}

func TestImagePushMissingSource(t *testing.T) {
	testenv.Docker(t)
	r := microctl(t, nil, "image", "push", "mctl14b-e2e-no-such-image:0", "--to", "unix:///nonexistent/docker.sock")
	if r.Code != 1 || !strings.Contains(r.Stderr, "image mctl14b-e2e-no-such-image:0 is not on the source engine") {
		t.Errorf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
