package cmdutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTerminalWidth(t *testing.T) {
	ios, _, _, _ := Test()
	if w := ios.TerminalWidth(); w != 0 {
		t.Errorf("buffers: width %d, want 0", w)
	}
	ios.SetTerminalWidth(120)
	if w := ios.TerminalWidth(); w != 0 {
		t.Errorf("stderr not a terminal: width %d, want 0", w)
	}
	ios.SetTTY(false, true)
	if w := ios.TerminalWidth(); w != 120 {
		t.Errorf("terminal: width %d, want 120", w)
	}
}

func TestReadUserFile(t *testing.T) {
	ios, in, _, _ := Test()
	in.WriteString("from stdin")
	b, err := ios.ReadUserFile("-")
	if err != nil || string(b) != "from stdin" {
		t.Errorf("-: %q %v", b, err)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("from a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ios.ReadUserFile(p); err != nil || string(b) != "from a file" {
		t.Errorf("file: %q %v", b, err)
	}
	if _, err := ios.ReadUserFile(p + ".missing"); err == nil {
		t.Error("missing file: no error")
	}
}

func TestWarnNoteInfo(t *testing.T) {
	ios, _, _, errOut := Test()
	ios.Warnf("instance %s: %v", "x\x1b[2J", "line one\nline two")
	ios.Notef("%s", "bidi\u202e")
	ios.Infof("%-6s|%s", "a", "b\x07")
	want := "warning: instance x\\x1b[2J: line one; line two\n" +
		"note: bidi\\u202e\n" +
		"a     |b\\x07\n"
	if got := errOut.String(); got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}
