package cmdutil

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxCell is the longest value, in characters, a table cell shows; a longer
// one is cut with "…". -o json always carries the full value.
const MaxCell = 120

// Sanitize makes s safe to write to a terminal. Everything microctl shows
// comes from somewhere else (Consul tags, metadata, check output, node and
// host names, Docker labels, user input echoed back), and a control
// character or escape sequence in it must be seen, not executed: C0 and C1
// controls, DEL, the Unicode bidirectional overrides and invalid UTF-8 are
// written as Go-style escapes (\x1b, \u202e). Tabs and newlines become
// escapes too: a value cannot break a table row or fake a line of output.
func Sanitize(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			switch r {
			case '\t':
				b.WriteString(`\t`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(&b, `\x%02x`, r)
			}
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Cell is Sanitize for a table cell: also cut to MaxCell characters.
func Cell(s string) string {
	s = Sanitize(s)
	if utf8.RuneCountInString(s) <= MaxCell {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxCell-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c >= 0x80 {
			return c >= 0x80 && utf8.ValidString(s) && !hasUnsafeRune(s)
		}
	}
	return true
}

func hasUnsafeRune(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || unsafeRune(r) {
			return true
		}
	}
	return false
}

// unsafeRune: C1 controls (0x9b is a one-byte CSI on some terminals), the
// bidirectional embeddings, overrides and isolates that reorder what is
// shown (the "Trojan Source" characters), and the line and paragraph
// separators.
func unsafeRune(r rune) bool {
	return (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x200e || r == 0x200f || r == 0x061c || r == 0x2028 || r == 0x2029
}
