package serve_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/microctl/microctl/cmd"
	"github.com/microctl/microctl/internal/cmdutil"
)

func TestServeStopsOnInterrupt(t *testing.T) {
	ios, _, out, errOut := cmdutil.Test()
	f := cmdutil.NewFactory(ios)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	code := cmd.Run(ctx, f, []string{"serve", "--addr", "127.0.0.1:0", "-o", "json"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "listening on http://127.0.0.1:") {
		t.Errorf("stderr %q", errOut.String())
	}
	var st map[string]any
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st["engine"] == nil {
		t.Errorf("stdout %q: %v", out.String(), err)
	}
}
