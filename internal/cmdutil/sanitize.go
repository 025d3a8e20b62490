package cmdutil

import (
	"fmt"
	"io"
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
func Sanitize(s string) string { return sanitize(s, false) }

// SanitizeText is Sanitize for a block of text shown as such (a service's
// answer, a message of several lines): newlines and tabs are kept as
// layout, every other control character is escaped.
func SanitizeText(s string) string { return sanitize(s, true) }

func sanitize(s string, layout bool) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case layout && (r == '\n' || r == '\t'):
			b.WriteRune(r)
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

// SafeWriter is the last line of defence on stdout: whatever a command
// prints, a control character or escape sequence that came from outside is
// written visibly, not executed. Newlines and tabs pass (they are layout);
// C0 controls and invalid UTF-8 become \xNN (they cannot occur in JSON,
// whose encoder escapes them itself); DEL, C1 controls and bidirectional
// overrides become \uNNNN, which inside a JSON string is a valid escape of
// the same character, so -o json stays valid and whole.
type SafeWriter struct {
	w       io.Writer
	pending []byte // an incomplete UTF-8 sequence at the end of the last write
}

// NewSafeWriter wraps w.
func NewSafeWriter(w io.Writer) *SafeWriter { return &SafeWriter{w: w} }

// Write implements io.Writer; it reports len(p) written on success.
func (s *SafeWriter) Write(p []byte) (int, error) {
	buf := append(s.pending, p...)
	s.pending = nil
	var out []byte
	clean := 0 // buf[clean:i] is still to be copied as is
	for i := 0; i < len(buf); {
		c := buf[i]
		if c >= 0x20 && c < 0x7f || c == '\n' || c == '\t' {
			i++
			continue
		}
		if c >= 0x80 {
			if !utf8.FullRune(buf[i:]) {
				s.pending = append([]byte(nil), buf[i:]...)
				buf = buf[:i]
				break
			}
			r, size := utf8.DecodeRune(buf[i:])
			if !(r == utf8.RuneError && size == 1) && !unsafeRune(r) {
				i += size
				continue
			}
			out = append(out, buf[clean:i]...)
			if r == utf8.RuneError && size == 1 {
				out = fmt.Appendf(out, `\x%02x`, c)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
			i += size
			clean = i
			continue
		}
		out = append(out, buf[clean:i]...)
		if c == 0x7f {
			out = append(out, `\u007f`...)
		} else {
			out = fmt.Appendf(out, `\x%02x`, c)
		}
		i++
		clean = i
	}
	if clean < len(buf) {
		out = append(out, buf[clean:]...)
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
