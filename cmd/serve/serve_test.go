package serve_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"syscall"
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

// TestServeRefusesAddressInUse: another process's listener (here a Go
// listener in this process, with SO_REUSEPORT as microctl serve sets it)
// is not shared.
func TestServeRefusesAddressInUse(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ios, _, _, errOut := cmdutil.Test()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := cmd.Run(ctx, cmdutil.NewFactory(ios), []string{"serve", "--addr", ln.Addr().String()})
	if code != 1 || !strings.Contains(errOut.String(), "address already in use") {
		t.Errorf("exit %d, stderr %q; want 1 and address already in use", code, errOut.String())
	}
}
