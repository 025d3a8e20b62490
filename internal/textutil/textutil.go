// Package textutil holds the few string helpers several layers share, so
// an engine message is reduced the same way wherever it is shown.
package textutil

import "strings"

// OneLine folds a multi-line message onto one line ("a; b") and squeezes
// runs of blanks, so an error from an engine or a parser fits the one-line
// `error: msg (hint)` form.
func OneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
