//go:build !unix

package hooks

import "os/exec"

// killGroup: no process groups here; exec.CommandContext kills the shell.
func killGroup(*exec.Cmd) {}
