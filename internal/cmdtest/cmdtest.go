// Package cmdtest helps test commands built the house way
// (NewCmdXxx(f, runF)): parse a command line and capture the Options the
// command would run with, without running anything.
package cmdtest

import (
	"bytes"
	"context"
	"testing"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
)

// Parse builds the command with a runF that captures its options, executes
// args, and returns the options (nil when parsing or validation failed
// before the run) and the error.
func Parse[O any](t testing.TB, build func(*cmdutil.Factory, func(context.Context, *O) error) *cobra.Command, args ...string) (*O, error) {
	t.Helper()
	ios, _, _, _ := cmdutil.Test()
	var got *O
	cmd := build(cmdutil.NewFactory(ios), func(_ context.Context, o *O) error { got = o; return nil })
	cmd.SetArgs(append([]string{}, args...)) // nil would make cobra read os.Args
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return got, cmd.ExecuteContext(context.Background())
}
