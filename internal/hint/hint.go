// Package hint is how an error says what to do about it. An error type a
// user can act on has a `Hint() string` method; the root command's error
// printer and `microctl doctor` both find it here, so the hint shown after
// `error: ...` and next to a failed check is one and the same. Packages
// that define such errors need not import this one: the method is enough.
package hint

import "errors"

// Hinter is an error that knows what the user should do about it.
type Hinter interface {
	Hint() string
}

// Of returns the hint of the first error in err's chain that has one, or "".
func Of(err error) string {
	var h Hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
