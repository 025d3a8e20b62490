package cmdutil

import (
	"errors"
	"fmt"
)

// Exit codes. They are part of microctl's interface: scripts and CI gates
// depend on them, so they never change meaning.
const (
	ExitOK          = 0
	ExitError       = 1
	ExitUsage       = 2
	ExitUnhealthy   = 3   // the command ran, but the system is unhealthy or did not converge
	ExitInterrupted = 130 // 128+SIGINT, the shell convention for Ctrl-C
)

// UsageError marks a mistake in how the command was called: an unknown flag,
// a bad flag value, a missing argument. It maps to exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// UnhealthyError reports that the command did its job and found the system
// unhealthy (a failed check, a service that did not converge). The command
// has already printed its findings; Msg, when set, is a one-line summary for
// stderr. It maps to exit code 3.
type UnhealthyError struct{ Msg string }

func (e *UnhealthyError) Error() string {
	if e.Msg == "" {
		return "unhealthy"
	}
	return e.Msg
}

// Unhealthy returns an UnhealthyError; an empty message prints nothing.
func Unhealthy(format string, a ...any) error {
	return &UnhealthyError{Msg: fmt.Sprintf(format, a...)}
}

// ErrSilent ends a command with exit code 1 without printing anything more:
// the command has already said what went wrong.
var ErrSilent = errors.New("silent error")

// CheckStackName refuses, as a usage error, a stack name no stack can have
// (empty, spaces, control characters, '/', ':'): the rule of docker/cli's
// stack commands, letters or digits first, then letters, digits, '_', '.'
// and '-'. Without it, `rm "bad name"` asked the engine and reported
// "nothing found", as if the name were fine.
func CheckStackName(name string) error {
	ok := name != ""
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			ok = false
			break
		}
	}
	if !ok {
		return Usagef("invalid stack name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	return nil
}

// CheckProjectName is CheckStackName for a stack deploy creates: compose's
// project-name rule, lowercase letters, digits, '-' and '_', starting with a
// letter or digit. A bad --stack is a usage error before any file is read.
func CheckProjectName(name string) error {
	ok := name != ""
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '-')) {
			ok = false
			break
		}
	}
	if !ok {
		return Usagef("invalid --stack %q: use lowercase letters, digits, '-' and '_', starting with a letter or digit", name)
	}
	return nil
}
