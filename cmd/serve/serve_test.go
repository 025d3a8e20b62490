package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
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

// TestServeTLS: serve --tls with a throwaway certificate; bench trusts it
// with --cacert, and without says why it does not.
func TestServeTLS(t *testing.T) {
	ios, _, _, _ := cmdutil.Test()
	errOut := &syncBuf{}
	ios.ErrOut = errOut
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- cmd.Run(ctx, cmdutil.NewFactory(ios), []string{"serve", "--tls", "--addr", "127.0.0.1:0", "--loops", "1"})
	}()
	var addr, pem string
	re := regexp.MustCompile(`listening on https://(\S+) `)
	rp := regexp.MustCompile(`written to (\S+\.pem)`)
	for i := 0; i < 200 && addr == ""; i++ {
		time.Sleep(20 * time.Millisecond)
		s := errOut.String()
		if m := re.FindStringSubmatch(s); m != nil {
			addr = m[1]
		}
		if m := rp.FindStringSubmatch(s); m != nil {
			pem = m[1]
		}
	}
	if addr == "" || pem == "" {
		cancel()
		t.Fatalf("no address or certificate file on stderr: %q", errOut.String())
	}
	run := func(args ...string) (int, string, string) {
		ios, _, out, eo := cmdutil.Test()
		c, cl := context.WithTimeout(context.Background(), 30*time.Second)
		defer cl()
		return cmd.Run(c, cmdutil.NewFactory(ios), args), out.String(), eo.String()
	}
	code, out, stderr := run("bench", "-n", "300", "-c", "3", "--cacert", pem, "https://"+addr+"/")
	if code != 0 || !strings.Contains(out, "requests   300") || !strings.Contains(out, "tls        TLS 1.3") {
		t.Errorf("bench --cacert: exit %d\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = run("bench", "-n", "10", "-c", "1", "https://"+addr+"/")
	if code != 1 || !strings.Contains(stderr, "unknown authority") {
		t.Errorf("bench without --cacert: exit %d, %q", code, stderr)
	}
	code, _, stderr = run("bench", "-n", "10", "-c", "1", "--cacert", pem, "--sni", "other.example", "https://"+addr+"/")
	if code != 1 || !strings.Contains(stderr, "name mismatch") {
		t.Errorf("bench --sni other: exit %d, %q", code, stderr)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(pem); !os.IsNotExist(err) {
		t.Errorf("certificate file %s left behind", pem)
	}
}

// syncBuf is a buffer a running command writes while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
