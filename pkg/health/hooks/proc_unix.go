//go:build unix

package hooks

import (
	"os/exec"
	"syscall"
)

// killGroup makes a timed-out command's kill reach its children too: the
// command runs under /bin/sh, and killing only the shell would leave a
// `sleep` (or a curl) running past the timeout.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
