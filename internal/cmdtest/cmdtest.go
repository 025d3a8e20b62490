// Package cmdtest is the one way command packages test their commands
// built the house way (NewCmdXxx(f, runF)):
//
//   - Parse: parse a command line and capture the Options the command would
//     run with, without running anything (flag wiring and validation);
//   - Exec: run the real command on test streams and get back what it
//     printed and the error it ended with (rendering and exit paths).
package cmdtest

import (
	"bytes"
	"context"
	"testing"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
)

// Builder is a command constructor taking a factory and a run hook.
type Builder[O any] func(*cmdutil.Factory, func(context.Context, *O) error) *cobra.Command

// Parse builds the command with a runF that captures its options, executes
// args, and returns the options (nil when parsing or validation failed
// before the run) and the error.
func Parse[O any](t testing.TB, build Builder[O], args ...string) (*O, error) {
	t.Helper()
	ios, _, _, _ := cmdutil.Test()
	return ParseWith(t, ios, build, args...)
}

// ParseWith is Parse on streams the test prepared (stdin to read from, a
// terminal to pretend).
func ParseWith[O any](t testing.TB, ios *cmdutil.IOStreams, build Builder[O], args ...string) (*O, error) {
	t.Helper()
	var got *O
	cmd := build(cmdutil.NewFactory(ios), func(_ context.Context, o *O) error { got = o; return nil })
	return got, execute(cmd, args)
}

// Output is what a command printed.
type Output struct {
	Stdout, Stderr string
}

// Exec builds the command (a single command or a group) on a factory with
// test streams, runs args for real, and returns what it printed and its
// error.
func Exec(t testing.TB, build func(*cmdutil.Factory) *cobra.Command, args ...string) (Output, error) {
	t.Helper()
	ios, _, out, errOut := cmdutil.Test()
	err := execute(build(cmdutil.NewFactory(ios)), args)
	return Output{Stdout: out.String(), Stderr: errOut.String()}, err
}

func execute(cmd *cobra.Command, args []string) error {
	cmd.SetArgs(append([]string{}, args...)) // nil would make cobra read os.Args
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return cmd.ExecuteContext(context.Background())
}
