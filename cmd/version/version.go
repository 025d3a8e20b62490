// Package version implements `microctl version`.
package version

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/microctl/microctl/internal/cmdutil"
)

// Info is what `microctl version -o json` prints; field names are stable.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	CommitAt  string `json:"commit_time,omitempty"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// Read collects version facts from the build info the Go linker embeds:
// the module version (a tag, or a pseudo-version derived from the VCS) and
// the vcs.* settings.
func Read() Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if v := bi.Main.Version; v != "" {
		info.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.time":
			info.CommitAt = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// Short is the one-line version used by `microctl --version`.
func Short() string {
	i := Read()
	s := i.Version
	if i.Commit != "" {
		c := i.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (" + c
		if i.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return s
}

// Options are the inputs of `microctl version`.
type Options struct {
	IO     *cmdutil.IOStreams
	Output cmdutil.Format
}

// NewCmdVersion builds the command.
func NewCmdVersion(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print microctl's version and build facts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(opts)
		},
	}
	cmdutil.AddOutputFlag(cmd, &opts.Output)
	return cmd
}

func run(opts *Options) error {
	i := Read()
	if opts.Output.JSON() {
		return cmdutil.PrintJSON(opts.IO.Out, i)
	}
	t := cmdutil.NewTable(opts.IO.Out)
	t.Row("Version:", i.Version)
	if i.Commit != "" {
		t.Row("Commit:", i.Commit)
		t.Row("Commit time:", i.CommitAt)
		t.Row("Modified:", fmt.Sprint(i.Modified))
	}
	t.Row("Go:", i.GoVersion)
	t.Row("Platform:", i.Platform)
	return t.Flush()
}
