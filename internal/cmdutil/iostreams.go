package cmdutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/moby/term"

	"github.com/microctl/microctl/internal/textutil"
)

// IOStreams is where a command reads and writes. Results go to Out, progress
// and warnings to ErrOut, so `microctl ... -o json | jq` never sees a
// progress line.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdinTTY  bool
	stdoutTTY bool
	stderrTTY bool
	noColor   bool

	// termWidth measures the terminal stderr writes to; nil when it is
	// not one (tests, pipes).
	termWidth func() int
}

// System returns streams bound to the process's stdin, stdout and stderr.
// NO_COLOR (https://no-color.org) is honoured here; --no-color is applied by
// the root command through SetNoColor.
func System() *IOStreams {
	return &IOStreams{
		In:        os.Stdin,
		Out:       NewSafeWriter(os.Stdout),
		ErrOut:    os.Stderr,
		stdinTTY:  isTerminal(os.Stdin),
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
		noColor:   os.Getenv("NO_COLOR") != "",
		termWidth: func() int { return fileWidth(os.Stderr) },
	}
}

// Test returns streams backed by buffers, for tests.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

func isTerminal(f *os.File) bool {
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// SetNoColor turns colour and redrawn progress off (the --no-color flag).
func (s *IOStreams) SetNoColor(v bool) {
	if v {
		s.noColor = true
	}
}

// SetTTY overrides terminal detection; tests use it to exercise both paths.
func (s *IOStreams) SetTTY(stdout, stderr bool) { s.stdoutTTY, s.stderrTTY = stdout, stderr }

// SetStdinTTY overrides terminal detection for stdin, for tests of prompts.
func (s *IOStreams) SetStdinTTY(v bool) { s.stdinTTY = v }

// IsStdinTTY reports whether a person can answer a question on stdin.
func (s *IOStreams) IsStdinTTY() bool { return s.stdinTTY }

// IsStdoutTTY reports whether results go to a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// ColorEnabled reports whether colour may be used on stdout.
func (s *IOStreams) ColorEnabled() bool { return s.stdoutTTY && !s.noColor }

// ProgressEnabled reports whether live, redrawn progress (a line rewritten
// in place, a ticking counter) may be written to stderr. When it is false,
// commands print one plain line per state change instead, which is what a
// CI log or `2> file` wants.
func (s *IOStreams) ProgressEnabled() bool { return s.stderrTTY && !s.noColor }

// TerminalWidth is the width in columns of the terminal progress is drawn
// on (stderr), 0 when it is not a terminal or cannot be measured. It is
// measured on each call, so a resized window is honoured by the next draw.
func (s *IOStreams) TerminalWidth() int {
	if s.termWidth == nil || !s.stderrTTY {
		return 0
	}
	return s.termWidth()
}

// SetTerminalWidth fixes the width TerminalWidth reports, for tests.
func (s *IOStreams) SetTerminalWidth(w int) { s.termWidth = func() int { return w } }

func fileWidth(f *os.File) int {
	ws, err := term.GetWinsize(f.Fd())
	if err != nil || ws == nil {
		return 0
	}
	return int(ws.Width)
}

// ReadUserFile reads a file the user named on the command line, where "-"
// means stdin (In), as the gh and consul CLIs do.
func (s *IOStreams) ReadUserFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(s.In)
	}
	return os.ReadFile(name)
}

// Warnf writes "warning: <message>" on stderr as one line. A warning
// usually quotes what it found (an instance ID, a label, an engine's or
// Consul's message), so the message is folded onto one line and passed
// through Sanitize: shown, never executed.
func (s *IOStreams) Warnf(format string, a ...any) {
	s.line("warning: ", fmt.Sprintf(format, a...))
}

// Notef is Warnf for "note: " lines: something worth knowing that is not a
// problem.
func (s *IOStreams) Notef(format string, a ...any) {
	s.line("note: ", fmt.Sprintf(format, a...))
}

// Infof writes a line of its own on stderr (what a command is about to do,
// a progress step), sanitised as Warnf's, its spacing kept.
func (s *IOStreams) Infof(format string, a ...any) {
	fmt.Fprintln(s.ErrOut, Sanitize(strings.TrimRight(fmt.Sprintf(format, a...), "\n")))
}

func (s *IOStreams) line(prefix, msg string) {
	fmt.Fprintln(s.ErrOut, prefix+Sanitize(textutil.OneLine(msg)))
}
