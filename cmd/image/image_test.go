package image

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/microctl/microctl/internal/cmdtest"
	"github.com/microctl/microctl/internal/cmdutil"
	pimage "github.com/microctl/microctl/pkg/image"
)

func TestPushFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"app:1", "--to", "ssh://me@10.0.0.2"}},
		{args: []string{"app:1", "--all-nodes", "--engine-url", "tcp://{hostname}:2375"}},
		{args: []string{"app:1"}, wantErr: "--to ENGINE or --all-nodes"},
		{args: []string{"app:1", "--to", "http://x"}, wantErr: "want unix://, tcp:// or ssh://"},
		{args: []string{"app:1", "--all-nodes", "--engine-url", "ssh://{ip}"}, wantErr: "unknown placeholder {ip}"},
		{args: []string{"--all-nodes"}, wantErr: "requires at least 1 arg"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			opts, err := cmdtest.Parse(t, NewCmdPush, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				var ue *cmdutil.UsageError
				if !errors.As(err, &ue) && !strings.Contains(err.Error(), "requires") {
					t.Errorf("not a usage error: %T", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.Images[0] != "app:1" {
				t.Errorf("images %v", opts.Images)
			}
		})
	}
}

func TestRender(t *testing.T) {
	res := []pimage.Result{
		{Target: "n3", Images: []pimage.ImageResult{{Ref: "app:1", ID: "sha256:0123456789abcdef", Status: pimage.StatusPresent}}},
		{Target: "n2", Bytes: 2 << 20, Images: []pimage.ImageResult{{Ref: "app:1", ID: "sha256:0123456789abcdef", Status: pimage.StatusSent}}},
		{Target: "n4\x1b[31m", Error: "node is down: not tried"},
	}
	var b bytes.Buffer
	if err := Render(&b, res); err != nil {
		t.Fatal(err)
	}
	want := `TARGET      IMAGE  ID            RESULT                           SENT
n2          app:1  0123456789ab  sent                             2.097MB
n3          app:1  0123456789ab  skipped (same ID already there)  -
n4\x1b[31m  -      -             failed: node is down: not tried  -
`
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
