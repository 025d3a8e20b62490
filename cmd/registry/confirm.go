package registry

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/microctl/microctl/internal/cmdutil"
)

// stdinIsTerminal reports whether in is a terminal a person can answer on.
func stdinIsTerminal(in io.Reader) bool {
	f, ok := in.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// requireConfirmable refuses, before any work is done, to run a command
// that deletes without --yes when nobody can answer the question.
func requireConfirmable(yes bool, tty bool, verb string) error {
	if yes || tty {
		return nil
	}
	return cmdutil.Usagef("refusing to %s without confirmation: stdin is not a terminal; pass --yes", verb)
}

// confirm asks question on stderr and reads the answer from in. Only "y"
// or "yes" agrees; end of input is a no.
func confirm(ios *cmdutil.IOStreams, question string) bool {
	fmt.Fprintf(ios.ErrOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(ios.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
