package cmdutil

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"grüße 世界", "grüße 世界"},
		{"with space", "with space"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"bidi\u202egnp.exe", `bidi\u202egnp.exe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"", ""},
	} {
		if got := Sanitize(tc.in); got != tc.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSanitizeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"line one\n\tline two\n", "line one\n\tline two\n"},
		{"\x1b[2Jcleared\r\n", `\x1b[2Jcleared\r` + "\n"},
		{"bidi\u202e\x9b", `bidi\u202e\x9b`},
	} {
		if got := SanitizeText(tc.in); got != tc.want {
			t.Errorf("SanitizeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCell(t *testing.T) {
	long := strings.Repeat("é", MaxCell+50)
	got := Cell(long)
	if n := utf8.RuneCountInString(got); n != MaxCell || !strings.HasSuffix(got, "…") {
		t.Errorf("Cell(long) has %d characters, ends %q", n, got[len(got)-6:])
	}
	if got := Cell("short"); got != "short" {
		t.Errorf("Cell(short) = %q", got)
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"a", "\x1b[2J", "\u202e", "\xff", "\x9b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Sanitize(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for _, r := range out {
			if r < 0x20 || r == 0x7f || unsafeRune(r) {
				t.Fatalf("Sanitize(%q) kept %U", s, r)
			}
		}
	})
}

func TestSafeWriter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"plain text and layout pass", []string{"a\tb\nc ü 世界\n"}, "a\tb\nc ü 世界\n"},
		{"escape sequences are shown", []string{"\x1b[2J\x1b]0;x\x07\r"}, `\x1b[2J\x1b]0;x\x07\x0d`},
		{"C1, DEL and bidi as JSON-valid escapes", []string{"\"a\u009bb\x7f\u202e\""}, `"a\u009bb\u007f\u202e"`},
		{"invalid UTF-8", []string{"x\xffy"}, `x\xffy`},
		{"a character split across writes", []string{"gr\xc3", "\xbc\xc3\x9f"}, "grüß"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			w := NewSafeWriter(&b)
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if b.String() != tc.want {
				t.Errorf("wrote %q, want %q", b.String(), tc.want)
			}
		})
	}
}
