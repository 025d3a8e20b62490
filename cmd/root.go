// Package cmd holds microctl's cobra commands. A command parses flags into
// an Options struct, calls one function in pkg/, and renders the result;
// this file wires the tree together and maps errors to exit codes.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/cmd/bench"
	"github.com/microctl/microctl/cmd/call"
	"github.com/microctl/microctl/cmd/doctor"
	"github.com/microctl/microctl/cmd/health"
	imagecmd "github.com/microctl/microctl/cmd/image"
	"github.com/microctl/microctl/cmd/key"
	"github.com/microctl/microctl/cmd/logs"
	"github.com/microctl/microctl/cmd/network"
	nodecmd "github.com/microctl/microctl/cmd/node"
	"github.com/microctl/microctl/cmd/registry"
	"github.com/microctl/microctl/cmd/serve"
	"github.com/microctl/microctl/cmd/stack"
	"github.com/microctl/microctl/cmd/swarm"
	"github.com/microctl/microctl/cmd/version"
	"github.com/microctl/microctl/internal/boundhttp"
	"github.com/microctl/microctl/internal/cmdutil"
	"github.com/microctl/microctl/internal/hint"
	"github.com/microctl/microctl/internal/textutil"
)

// NewRootCmd builds the command tree around f.
func NewRootCmd(f *cmdutil.Factory) *cobra.Command {
	var noColor bool
	root := &cobra.Command{
		Use:   "microctl",
		Short: "Operate go-micro services on Docker Swarm and Consul",
		Long: `microctl operates a go-micro style deployment: a Docker Swarm with an overlay
network, services deployed from compose files, Consul as registry and KV
store, JWT signing keys in Consul KV, and a load generator on its own epoll
reactor.

Connections follow each ecosystem's conventions: CONSUL_HTTP_ADDR,
CONSUL_HTTP_TOKEN and the other CONSUL_* variables for Consul; DOCKER_HOST,
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for Docker. A flag overrides only
what you set.

Exit codes: 0 ok, 1 error, 2 usage error, 3 ran fine but the system is
unhealthy or did not converge, 130 interrupted.`,
		Version:       version.Short(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			f.IOStreams.SetNoColor(noColor)
			f.Timeout.Use(cmd)
		},
	}
	root.SetIn(f.IOStreams.In)
	root.SetOut(f.IOStreams.Out)
	root.SetErr(f.IOStreams.ErrOut)
	root.SetVersionTemplate("microctl {{.Version}}\n")

	pf := root.PersistentFlags()
	f.ConsulFlags.Register(pf)
	f.DockerFlags.Register(pf)
	f.Timeout.Register(pf)
	pf.BoolVar(&noColor, "no-color", false, "no colour and no redrawn progress (also: NO_COLOR)")

	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &cmdutil.UsageError{Err: err}
	})

	root.AddCommand(
		doctor.NewCmdDoctor(f, nil),
		key.NewCmdKey(f),
		swarm.NewCmdSwarm(f),
		network.NewCmdNetwork(f),
		registry.NewCmdRegistry(f),
		health.NewCmdHealth(f, nil),
		version.NewCmdVersion(f, nil),
		stack.NewCmdDeploy(f, nil),
		stack.NewCmdPs(f, nil),
		stack.NewCmdRm(f, nil),
		stack.NewCmdRollback(f, nil),
		stack.NewCmdScale(f, nil),
		bench.NewCmdBench(f, nil),
		serve.NewCmdServe(f, nil),
		logs.NewCmdLogs(f, nil),
		nodecmd.NewCmdNode(f),
		call.NewCmdCall(f, nil),
		imagecmd.NewCmdImage(f),
	)
	// cobra adds its help and completion commands only when it executes,
	// after markUsageErrors would have run: add them now so that
	// `completion nosuch` is a usage error like any unknown command, and
	// replace help with one that refuses an unknown topic (cobra's prints
	// "Unknown help topic" and exits 0).
	root.SetHelpCommand(newHelpCmd(root))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	markUsageErrors(root)
	return root
}

func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help provides help for any command in the application.\nSimply type microctl help [path to command] for full details.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return cmdutil.Usagef("unknown help topic %q", strings.Join(args, " "))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}

// markUsageErrors makes every error that cobra raises before a command's
// RunE starts (unknown command, wrong number of arguments, a missing
// required flag) a usage error, without each command having to say so.
// Errors from RunE itself keep their own classification.
func markUsageErrors(c *cobra.Command) {
	if c.Args != nil {
		validate := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := validate(cmd, args); err != nil {
				return &cmdutil.UsageError{Err: err}
			}
			return nil
		}
	}
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		// A group command ("microctl swarm") prints its help; an unknown
		// subcommand is a usage error rather than a silent help page.
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cmdutil.Usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// Execute runs microctl with the process's arguments and returns its exit
// code. Ctrl-C and SIGTERM cancel the command's context.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := cmdutil.NewFactory(cmdutil.System())
	return Run(ctx, f, os.Args[1:])
}

// Run executes the command line args against f and returns the exit code.
// Tests call it directly with fake streams.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) (code int) {
	stderr := f.IOStreams.ErrOut
	defer func() {
		if r := recover(); r != nil {
			// A panic is a bug in microctl; the user gets one line, and the
			// stack only when they ask for it.
			fmt.Fprintf(stderr, "error: internal error: %v (please report it; set MICROCTL_DEBUG=1 for the stack)\n", r)
			if os.Getenv("MICROCTL_DEBUG") != "" {
				fmt.Fprintf(stderr, "%s\n", debug.Stack())
			}
			code = cmdutil.ExitError
		}
	}()
	root := NewRootCmd(f)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && ctx.Err() != nil && !isUnhealthy(err) {
		fmt.Fprintln(stderr, "interrupted")
		return cmdutil.ExitInterrupted
	}
	return report(stderr, cmd, err)
}

func isUnhealthy(err error) bool {
	var ue *cmdutil.UnhealthyError
	return errors.As(err, &ue)
}

// ExitCode maps an error returned by a command to microctl's exit code.
// This is the one place where that mapping lives.
func ExitCode(err error) int {
	var usage *cmdutil.UsageError
	var unhealthy *cmdutil.UnhealthyError
	switch {
	case err == nil:
		return cmdutil.ExitOK
	case errors.As(err, &unhealthy):
		return cmdutil.ExitUnhealthy
	case errors.As(err, &usage):
		return cmdutil.ExitUsage
	case errors.Is(err, context.Canceled):
		return cmdutil.ExitInterrupted
	}
	return cmdutil.ExitError
}

// report prints err on one line and returns its exit code.
func report(w io.Writer, cmd *cobra.Command, err error) int {
	// An error can quote what it got (a name, a daemon's message, a
	// server's answer): shown, never executed.
	w = cmdutil.NewSafeWriter(w)
	code := ExitCode(err)
	var unhealthy *cmdutil.UnhealthyError
	switch {
	case err == nil, errors.Is(err, cmdutil.ErrSilent):
	case errors.As(err, &unhealthy):
		if unhealthy.Msg != "" {
			fmt.Fprintln(w, unhealthy.Msg)
		}
	case code == cmdutil.ExitUsage:
		path := "microctl"
		if cmd != nil {
			path = cmd.CommandPath()
		}
		fmt.Fprintf(w, "error: %s (see '%s --help')\n", textutil.OneLine(err.Error()), path)
	case code == cmdutil.ExitInterrupted:
		fmt.Fprintln(w, "interrupted")
	default:
		// A request that got no answer, or a server that is not what it
		// should be, is said once in its own words, whatever the layers
		// above wrapped around it.
		var te *boundhttp.TimeoutError
		var we *boundhttp.WrongPeerError
		if errors.As(err, &te) {
			err = te
		} else if errors.As(err, &we) {
			err = we
		}
		msg := textutil.OneLine(err.Error())
		if h := hint.Of(err); h != "" {
			msg += " (" + h + ")"
		}
		fmt.Fprintln(w, "error: "+msg)
	}
	return code
}
