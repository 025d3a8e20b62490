//go:build linux

package image

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/microctl/microctl/internal/netns"
	"github.com/microctl/microctl/internal/testenv"
)

// startSSHD runs a private sshd on 127.0.0.1 (its own host key, config,
// pid file and authorized key; nothing of the system's sshd setup is
// used) whose sessions talk to the engine at dockerHost. It puts an ssh
// wrapper first on PATH that logs in with the test's key and does not
// touch ~/.ssh. It returns the port.
func startSSHD(t *testing.T, dockerHost string) int {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if sshd = "/usr/sbin/sshd"; !fileExists(sshd) {
			t.Skip("no sshd (Debian's openssh-server; scripts/testenv.sh does not install it)")
		}
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client")
	}
	dir := t.TempDir()
	for _, k := range []string{"host", "client"} {
		out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "client.pub"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s/host
PidFile %s/sshd.pid
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv DOCKER_HOST=%s
`, port, dir, dir, dir, dockerHost)
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// sshd insists on its privilege separation directory.
	_ = os.MkdirAll("/run/sshd", 0o755)
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logf, _ := os.Create(filepath.Join(dir, "sshd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Logf("sshd log:\n%s", b)
		}
	})
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 50 {
			t.Fatalf("sshd does not listen on %d", port)
		}
		time.Sleep(100 * time.Millisecond)
	}
	bin := filepath.Join(dir, "bin")
	_ = os.Mkdir(bin, 0o755)
	realSSH, _ := exec.LookPath("ssh")
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %s -F /dev/null -i %s/client -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n", realSSH, dir)
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return port
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestPushOverSSH pushes an image from the local engine to a lab engine
// reached as ssh://root@127.0.0.1:PORT: the Docker API goes through ssh
// and `docker system dial-stdio` on the far side, as with docker -H ssh://.
func TestPushOverSSH(t *testing.T) {
	src := testenv.DockerChanges(t)
	if err := netns.Available(); err != nil {
		testenv.Missing(t, "no lab here: %v", err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI for dial-stdio")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lab, err := netns.New(ctx, netns.WithNodes(1), netns.WithLog(t.Logf))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	if err := lab.Start(ctx); err != nil {
		t.Fatal(err)
	}
	port := startSSHD(t, lab.Nodes[0].Host)
	ref := fmt.Sprintf("mctl14b-push-test:%x", rand.Uint32())
	buildScratch(t, src, ref)

	url := fmt.Sprintf("ssh://root@127.0.0.1:%d", port)
	opts, err := ClientOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != lab.Nodes[0].Hostname {
		t.Fatalf("over ssh the engine is %q, want the lab's %q", info.Name, lab.Nodes[0].Hostname)
	}
	imgs, err := Resolve(ctx, src, []string{ref}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Push(ctx, src, imgs, []Target{{Name: "n1", URL: url, Engine: c}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Images[0].Status != StatusSent || res[0].Bytes < 256<<10 {
		t.Errorf("over ssh: %s, %d bytes", res[0].Images[0].Status, res[0].Bytes)
	}

	// A refused login says why, from ssh's own words.
	bad, _ := ClientOptions(fmt.Sprintf("ssh://nobody-here@127.0.0.1:%d", port))
	bc, _ := client.NewClientWithOpts(bad...)
	defer bc.Close()
	if _, err := bc.Info(ctx); err == nil {
		t.Error("a login as an unknown user worked")
	} else {
		t.Logf("refused login: %v", err)
	}
}
