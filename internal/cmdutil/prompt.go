package cmdutil

import (
	"bufio"
	"fmt"
	"strings"
)

// RequireConfirmable refuses, before any work is done, to run a command
// that deletes without --yes when nobody can answer the question (stdin is
// not a terminal: a script, a pipe, CI). It is a usage error.
func RequireConfirmable(yes, stdinTTY bool, verb string) error {
	if yes || stdinTTY {
		return nil
	}
	return Usagef("refusing to %s without confirmation: stdin is not a terminal; pass --yes", verb)
}

// Confirm asks question on stderr and reads the answer from stdin. Only "y"
// or "yes" agrees; anything else, and end of input, is a no.
func (s *IOStreams) Confirm(question string) bool {
	fmt.Fprintf(s.ErrOut, "%s [y/N] ", question)
	line, _ := bufio.NewReader(s.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}
