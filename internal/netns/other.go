//go:build !linux

package netns

import (
	"context"
	"errors"
)

// errNotLinux is why nothing here works elsewhere: network namespaces,
// setns and the lab's mounts are Linux's. The package still builds and
// vets on every platform, so its callers (e2e) do too; Available makes
// their tests skip.
var errNotLinux = errors.New("needs Linux (network namespaces)")

// Available says why a lab cannot run here.
func Available() error { return errNotLinux }

// New cannot make a lab here.
func New(ctx context.Context, opts ...Option) (*Lab, error) { return nil, errNotLinux }

// Start cannot start a lab here.
func (l *Lab) Start(ctx context.Context) error { return errNotLinux }

// Close has nothing to undo here.
func (l *Lab) Close() error { return nil }

// Sweep finds no labs here.
func Sweep() ([]string, error) { return nil, nil }

// RunIn cannot enter a namespace here.
func RunIn(path string, fn func() error) error { return errNotLinux }

// Load finds no lab here.
func Load(dir string) (*Lab, error) { return nil, errNotLinux }

// OwnerAlive: no lab runs here.
func (l *Lab) OwnerAlive() bool { return false }
