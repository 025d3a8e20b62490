//go:build linux

package netns

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// RunIn runs fn on an OS thread switched into the network namespace at
// path (a container's /proc/PID/ns/net, or /run/netns/NAME). A socket fn
// opens belongs to that namespace for its whole life. The thread is never
// switched back: the goroutine exits locked, so Go discards the thread and
// no other goroutine ever runs in the namespace by accident.
func RunIn(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
