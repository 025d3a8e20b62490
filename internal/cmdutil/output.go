package cmdutil

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// Format is an output format selected with -o/--output.
type Format string

const (
	FormatTable Format = "table"
	FormatJSON  Format = "json"
)

// String implements pflag.Value.
func (f *Format) String() string {
	if *f == "" {
		return string(FormatTable)
	}
	return string(*f)
}

// Set implements pflag.Value; a bad value is a usage error (exit 2).
func (f *Format) Set(v string) error {
	switch Format(v) {
	case FormatTable, FormatJSON:
		*f = Format(v)
		return nil
	}
	return fmt.Errorf("must be table or json")
}

// Type implements pflag.Value.
func (f *Format) Type() string { return "format" }

// JSON reports whether JSON output was asked for.
func (f Format) JSON() bool { return f == FormatJSON }

// AddOutputFlag adds -o/--output to a command that prints data.
func AddOutputFlag(cmd *cobra.Command, f *Format) {
	*f = FormatTable
	cmd.Flags().VarP(f, "output", "o", "output format: table or json")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
}

// PrintJSON writes v as indented JSON followed by a newline. HTML escaping
// is off: "<" in a check output should stay "<" for jq users.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Table writes aligned columns for people. Scripts should use -o json,
// whose field names are stable; column layout may change.
type Table struct {
	tw *tabwriter.Writer
}

// NewTable starts a table with the given column headers.
func NewTable(w io.Writer, headers ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(headers) > 0 {
		t.Row(headers...)
	}
	return t
}

// Row adds a row. Every cell goes through Cell: control characters and
// escape sequences from Consul or Docker are shown, not executed, a tab or
// newline cannot break the alignment, and a very long value is cut (-o json
// has it whole).
func (t *Table) Row(cells ...string) {
	for i, c := range cells {
		cells[i] = Cell(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

// Flush writes the table out.
func (t *Table) Flush() error { return t.tw.Flush() }
